"""The real NER path (make real-ner): params/real/ner.yaml is a valid grid of the required shape on the shared UNER
folder that a dry run plans (preflight and cost, without building the encoder), and one tiny run goes through it
end to end with the real encoder on real UNER treebanks."""

import dataclasses
from pathlib import Path

import pytest

from fslib.core.languages import language
from fslib.formats.uner import default_uner_dir
from fslib.store.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent
UNER_DIR = default_uner_dir()
pytestmark = pytest.mark.skipif(not UNER_DIR.is_dir(), reason=f"no UNER treebanks at {UNER_DIR} (the shared folder "
                                                              f"beside the repository; or set FSLIB_UNER_DIR)")


@pytest.fixture
def real_params(tmp_path):
    """params/real/ner.yaml with its UNER folder pointed at the shared one (the file's relative path holds in a
    clone with shared/ beside it, not necessarily in the test's working directory)."""
    text = (ROOT / "params" / "real" / "ner.yaml").read_text()
    assert "data_dir: ../shared/data/uner" in text
    path = tmp_path / "ner.yaml"
    path.write_text(text.replace("data_dir: ../shared/data/uner", f"data_dir: {UNER_DIR}")
                    .replace("output_dir: outputs/real-ner", f"output_dir: {tmp_path / 'out'}"))
    return path


def test_real_ner_grid_has_the_required_shape(real_params):
    from fslib.batch.params import load_params

    batch = load_params(real_params)
    assert batch.prepare == "encoder"
    assert len(batch.runs) == 3 + 5 * 2 * 3 + 3  # zero-shot per seed, 5 methods x K {5, 10}, script study at seed 1
    main = [run for run in batch.runs if run.method_label is None]
    targets = [lang for lang in main[0].languages if lang != "en"]
    assert main[0].languages[0] == "en" and sorted(targets) == sorted("de pt ru zh sv da hr sk sr".split())
    assert {language(lang).script for lang in targets} == {"Latin", "Cyrillic", "Chinese"}
    assert {run.method for run in main} == {"zero-shot", "ord-FS", "ord-FS+dev", "co-FT", "naive-co-train",
                                            "gradient-co-train"}
    assert {run.seed for run in main} >= {1, 2, 3} and {run.k for run in main} - {0} == {5, 10}
    assert all(run.source == "uner" and run.task == "ner" and run.gradient_similarity for run in main)
    subsets = [run.target_langs for run in batch.runs if run.method_label == "gradient-subset"]
    singles = {tuple(run.target_langs) for run in batch.runs if run.method_label == "gradient-single"}
    assert subsets and all(len(s) >= 2 and (lang,) in singles for s in subsets for lang in s)
    assert all(len({language(lang).script for lang in s}) == 1 for s in subsets)  # each pair shares a script


def test_a_dry_run_plans_the_real_ner_grid(real_params, capsys):
    """What `fslib batch params/real/ner.yaml --dry-run` does after building the encoder: plan, preflight every
    split the runs read (the UNER files, carved), and price the grid."""
    from fslib.batch.cost import dry_run_report
    from fslib.batch.planning import plan
    from fslib.batch.preflight import check_data

    runs, _ = plan([real_params], prepare=False)
    assert len(runs) == 36 and all(run.status == "pending" for run in runs)
    assert check_data([run.config for run in runs], stop=True)
    assert "all present and labelled" in capsys.readouterr().out
    report = dry_run_report([real_params], [run.config for run in runs], [run.config for run in runs])
    assert "36 runs + 3 source models" in report
    assert "XTREME's published sizes" not in report  # sizes counted from the UNER files, as carved


def test_one_tiny_run_with_the_real_encoder_on_uner(tmp_path):
    """K=1, one epoch, one target: build the encoder trimmed to the run's sentences, co-train with surgery,
    evaluate on real UNER test sentences."""
    from fslib.engine.runner import run_dir, run_experiment
    from fslib.prepare.offline_encoder import prepare_encoder
    from fslib.store.results import load_results

    encoder = tmp_path / "encoder"
    prepare_encoder(encoder, UNER_DIR, ["en", "sr"], source="uner")
    config = RunConfig(task="ner", method="gradient-co-train", k=1, seed=1, model=str(encoder), source="uner",
                       data_dir=str(UNER_DIR), languages=["en", "sr"], output_dir=str(tmp_path / "out"), epochs=1,
                       learning_rate=1e-4, train_batch_size=8, max_train_examples=16, max_eval_examples=8,
                       max_length=64, progress=False)
    rows = run_experiment(config)
    test = rows[(rows["split"] == "test") & (rows["metric"] == "f1")].set_index("lang")["value"]
    assert set(test.index) == {"en", "sr"} and test.between(0, 100).all()
    assert len(load_results(tmp_path / "out" / "runs")) == len(rows)
    assert (run_dir(config) / "surgery.csv").exists()
    assert dataclasses.asdict(config)["source"] == "uner"
