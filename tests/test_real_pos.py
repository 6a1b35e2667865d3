"""The real POS path (make real): params/real/pos.yaml is a valid grid of the required shape on the shared UD
folder, and one tiny run goes through it end to end with the real encoder on real treebanks."""

import dataclasses
from pathlib import Path

import pytest

from fslib.core.languages import language
from fslib.formats.ud import default_ud_dir
from fslib.store.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent
UD_DIR = default_ud_dir()
pytestmark = pytest.mark.skipif(not UD_DIR.is_dir(), reason=f"no UD treebanks at {UD_DIR} (the shared folder "
                                                            f"beside the repository; or set FSLIB_UD_DIR)")


@pytest.fixture
def real_params(tmp_path):
    """params/real/pos.yaml with its UD folder pointed at the shared one (the file's relative path holds in a
    clone with shared/ beside it, not necessarily in the test's working directory)."""
    text = (ROOT / "params" / "real" / "pos.yaml").read_text()
    assert "data_dir: ../shared/data/ud" in text
    path = tmp_path / "pos.yaml"
    path.write_text(text.replace("data_dir: ../shared/data/ud", f"data_dir: {UD_DIR}"))
    return path


def test_real_grid_has_the_required_shape(real_params):
    from fslib.batch.params import load_params

    batch = load_params(real_params)
    assert batch.prepare == "encoder"
    assert len(batch.runs) == 3 + 5 * 2 * 3 + 6 * 3  # zero-shot per seed, 5 methods x K {5, 10}, script study
    main = [run for run in batch.runs if run.method_label is None]
    targets = [lang for lang in main[0].languages if lang != "en"]
    assert main[0].languages[0] == "en" and len(targets) >= 12
    scripts = {language(lang).script for lang in targets}
    assert len(scripts) >= 5 and "unknown" not in scripts
    assert {run.method for run in main} == {"zero-shot", "ord-FS", "ord-FS+dev", "co-FT", "naive-co-train",
                                            "gradient-co-train"}
    assert {run.seed for run in main} >= {1, 2, 3}
    assert {run.k for run in main} - {0} >= {5, 10}
    assert all(run.source == "ud" and run.gradient_similarity for run in main)
    subsets = [run.target_langs for run in batch.runs if run.method_label == "gradient-subset"]
    singles = {tuple(run.target_langs) for run in batch.runs if run.method_label == "gradient-single"}
    assert len({tuple(s) for s in subsets}) >= 2 and all((lang,) in singles for s in subsets for lang in s)


def test_one_tiny_run_with_the_real_encoder_on_ud(tmp_path):
    """K=1, one epoch, one target: build the encoder trimmed to the run's sentences, co-train with surgery,
    evaluate on real test sentences."""
    from fslib.engine.runner import run_dir, run_experiment
    from fslib.prepare.offline_encoder import prepare_encoder
    from fslib.store.results import load_results

    encoder = tmp_path / "encoder"
    prepare_encoder(encoder, UD_DIR, ["en", "hi"])
    config = RunConfig(task="pos", method="gradient-co-train", k=1, seed=1, model=str(encoder), source="ud",
                       data_dir=str(UD_DIR), languages=["en", "hi"], output_dir=str(tmp_path / "out"), epochs=1,
                       learning_rate=1e-4, train_batch_size=8, max_train_examples=16, max_eval_examples=8,
                       max_length=64, progress=False)
    rows = run_experiment(config)
    test = rows[(rows["split"] == "test") & (rows["metric"] == "f1")].set_index("lang")["value"]
    assert set(test.index) == {"en", "hi"} and test.between(0, 100).all()
    assert len(load_results(tmp_path / "out" / "runs")) == len(rows)
    assert (run_dir(config) / "surgery.csv").exists()
    assert dataclasses.asdict(config)["source"] == "ud"
