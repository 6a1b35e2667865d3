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


@pytest.mark.parametrize("task, oracle_batch_size, lang, expected", [
    ("ner", None, "en", 4),  # the source: min(K, train batch) = min(5, 4)
    ("ner", None, "de", 4),  # a target with more shots (5) than a train batch (4): a random batch of 4
    ("ner", 8, "de", 5),  # the authors' rule: all K shots
    ("xnli", 2, "de", 2),  # XNLI's 3K shots: a random batch of min(K, n)
    ("xnli", 2, "en", 2),  # the source: min(K, n)
])
def test_cost_prices_the_oracle_batches_the_engine_builds(tmp_path, task, oracle_batch_size, lang, expected):
    from fslib.batch.cost import oracle_examples
    from fslib.core.surgeons import oracle_batch_size as engine_rule

    config = RunConfig(task=task, method="gradient-co-train", k=5, seed=1, model="m", languages=["en", "de"],
                       train_batch_size=4, oracle_batch_size=oracle_batch_size)
    assert oracle_examples(config, lang) == expected
    shots = 5 * (3 if task == "xnli" else 1)
    assert (engine_rule(config, lang, shots) or shots) == expected


def test_an_unknown_task_gets_no_reader(tmp_path):
    from fslib.formats.xtreme import read_xtreme

    with pytest.raises(ValueError, match="no XTREME reader: unknown task 'pawsx'; valid tasks: ner, pos, tydiqa, xnli"):
        read_xtreme("pawsx", tmp_path / "train-en.tsv")
