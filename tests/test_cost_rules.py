"""fslib.batch.cost counts source models by the run store's own rule (fslib.store.ledger.source_model_identity):
two runs share one exactly when the engine would train them one source model."""

import pytest

from fslib.batch.cost import DataSizes, grid_cost
from fslib.store.config import RunConfig
from fslib.store.ledger import source_model_folder


def zero_shot(tmp_path, **values) -> RunConfig:
    for name in ("train-en", "dev-en", "test-en", "dev-de", "test-de"):  # files to stamp and count
        path = tmp_path / "download" / "panx" / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("Paris\tB-LOC\n\nJan\tB-PER\n")
    return RunConfig(**{"task": "ner", "method": "zero-shot", "k": 0, "seed": 1, "model": "xlm-roberta-large",
                        "data_dir": str(tmp_path / "download"), "languages": ["en", "de"],
                        "output_dir": str(tmp_path / "outputs"), **values})


@pytest.mark.parametrize("field, value", [("weight_decay", 0.1), ("adam_epsilon", 1e-6), ("max_grad_norm", 0.5)])
def test_a_source_training_hyperparameter_makes_a_second_source_model(tmp_path, field, value):
    plain, other = zero_shot(tmp_path), zero_shot(tmp_path, **{field: value})
    assert source_model_folder(plain) != source_model_folder(other)  # the engine trains two
    assert grid_cost([plain, other], DataSizes()).source_models == 2  # and the cost counts two


def test_target_only_fields_share_the_source_model(tmp_path):
    runs = [zero_shot(tmp_path), RunConfig(**{**zero_shot(tmp_path).to_dict(), "method": "ord-FS", "k": 5,
                                              "target_epochs": 3})]
    assert source_model_folder(runs[0]) == source_model_folder(runs[1])
    assert grid_cost(runs, DataSizes()).source_models == 1
