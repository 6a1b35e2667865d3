"""`fslib batch` end to end on the offline benchmark: the runs and reports it promises, resuming after an
interruption, failures recorded without stopping the others, and bad parameter files refused up front."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from fslib.batch.planning import plan, run_batch
from fslib.cli import main
from fslib.store.results import load_results

FAST = {"epochs": 1, "learning_rate": 1.0e-3, "max_train_examples": 100, "max_eval_examples": 30,
        "eval_batch_size": 128}


def write_params(path: Path, mini_dir, tiny_model, output_dir, grids, **defaults) -> Path:
    document = {"defaults": {"model": str(tiny_model), "source": "xtreme", "data_dir": str(mini_dir),
                             "output_dir": str(output_dir), **FAST, **defaults}, "grids": grids}
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module")
def report_batch(mini_dir, tiny_model, tmp_path_factory):
    """A small grid that feeds every analysis: NER with every method needed by the reports, K=1, two seeds, the
    gradient similarities and test curves, and a script study."""
    root = tmp_path_factory.mktemp("batch")
    languages = ["en", "qa", "qc"]
    params = write_params(root / "ner.yaml", mini_dir, tiny_model, root / "outputs", [
        {"task": "ner", "methods": ["zero-shot", "ord-FS", "ord-FS+dev", "naive-co-train", "gradient-co-train"],
         "k": [1], "seeds": [1, 2], "languages": languages},
        {"task": "ner", "label": "gradient-single", "methods": ["gradient-co-train"], "k": [1], "seeds": [1],
         "target_sets": [["qa"]]},
    ], test_curves=True, gradient_similarity=True, similarity_source_batches=2)
    status = run_batch([params], jobs=2)
    return root, params, status


def test_batch_writes_every_run_and_the_reports(report_batch):
    root, params, status = report_batch
    assert status == 0
    results = load_results(root / "outputs" / "runs")
    assert results.run_id.nunique() == 2 + 2 * 4 + 1
    assert set(results[results.split == "test"].method) == {"zero-shot", "ord-FS", "ord-FS+dev", "naive-co-train",
                                                           "gradient-co-train", "gradient-single"}
    (executed,) = (root / "outputs/runs/ner/gradient-single/k1/seed1/qa").glob("*/ner.ipynb")
    executed = nbformat.read(executed, as_version=4)
    view = executed.cells[next(i for i, cell in enumerate(executed.cells) if "task's view" in cell.source):]
    shown = "".join(output.get("text", "") + output.get("data", {}).get("text/plain", "")
                    for cell in view if cell.cell_type == "code" for output in cell.outputs)
    assert all(word in shown for word in ("LOC", "PER", "all", "errors", "sentence", "qa"))  # NER's own view
    reports = root / "outputs" / "reports"
    index = (reports / "index.html").read_text()
    promised = {"main_results": ["main_results.csv", "main_results_vs_paper.csv", "per_language_ner_k1.csv",
                                 "significance.csv"],
                "language_benefit_ner": ["language_benefit.csv", "language_benefit.png"],
                "gradient_heatmap_ner": ["gradient_heatmap.png", "gradient_similarity_gradient-co-train.csv"],
                "script_study_ner": ["script_study.csv", "script_study.png"],
                "overfitting_curves_ner": ["dev_curves.csv", "best_epochs.csv", "dev_curves.png",
                                           "selection_curves.png"]}
    for name, files in promised.items():
        assert f'href="{name}.html"' in index and (reports / f"{name}.html").exists(), name
        assert "failed" not in index
        for file in files:
            assert (reports / name / file).exists(), (name, file)
    benefit = pd.read_csv(reports / "language_benefit_ner" / "language_benefit.csv")
    assert list(benefit.columns[:2]) == ["lang", "delta"] and set(benefit.lang) == {"qa", "qc"}


def test_second_batch_reuses_everything(report_batch, capsys):
    root, params, _ = report_batch
    index = root / "outputs" / "reports" / "index.html"
    before = index.stat().st_mtime_ns
    assert run_batch([params]) == 0
    assert "all 11 runs already done" in capsys.readouterr().out
    assert index.stat().st_mtime_ns == before  # results unchanged: reports not rebuilt


def test_dry_run_lists_runs_done_and_reused(report_batch, capsys):
    root, params, _ = report_batch
    extended = yaml.safe_load(params.read_text())
    extended["grids"][0]["seeds"] = [1, 2, 3]  # seed 3 needs a new source model
    extended["grids"][0]["k"] = [1, 5]  # K=5 runs of seeds 1 and 2 reuse theirs
    bigger = root / "bigger.yaml"
    bigger.write_text(yaml.safe_dump(extended))
    assert main(["batch", str(bigger), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "28 runs: 11 done, 17 pending" in out
    assert "source models: 1 to train, 2 reused" in out
    assert "[pending] ner-zero-shot-k0-seed3" in out
    assert "power: " in out  # fslib.analysis.power: what the grid can detect (tests/test_power.py)
    assert not (root / "outputs/runs/ner/zero-shot/k0/seed3").exists()


def test_dry_run_prepares_nothing(tmp_path, capsys):
    """A dry run of a file that asks for `prepare: offline` writes neither the benchmark nor the model (the batch
    itself does); its runs are planned and priced all the same."""
    params = tmp_path / "demo.yaml"
    params.write_text(yaml.safe_dump({"prepare": "offline", "defaults": {
        "model": str(tmp_path / "models" / "tiny-xlmr"), "source": "xtreme", "data_dir": str(tmp_path / "data"),
        "output_dir": str(tmp_path / "outputs"), **FAST}, "grids": [
        {"task": "ner", "methods": ["naive-co-train"], "k": [1], "seeds": [1], "languages": ["en", "qa"]}]}))
    assert main(["batch", str(params), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 runs: 1 pending" in out and "written by the batch, not by a dry run" in out
    assert "estimated cost of the grid: 1 runs" in out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["demo.yaml"]


def small_grid(root, mini_dir, tiny_model, name):
    return write_params(root / f"{name}.yaml", mini_dir, tiny_model, root / name, [
        {"task": "ner", "methods": ["naive-co-train"], "k": [1], "seeds": [1, 2, 3], "languages": ["en", "qa"]}])


def test_interrupted_batch_resumes_with_only_the_missing_runs(mini_dir, tiny_model, tmp_path):
    complete = small_grid(tmp_path, mini_dir, tiny_model, "complete")
    assert run_batch([complete], reports=False) == 0

    interrupted = small_grid(tmp_path, mini_dir, tiny_model, "interrupted")
    # Ctrl-C as at a terminal: SIGINT at its default action, though these tests may run in a background job,
    # whose children start with it ignored (and Python then keeps ignoring it)
    process = subprocess.Popen([sys.executable, "-m", "fslib.cli", "batch", str(interrupted), "--no-reports"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    runs = tmp_path / "interrupted" / "runs"
    deadline = time.time() + 300
    # a run is over when its worker is gone too (its status is then "done", no longer "running"): a Ctrl-C, which
    # reaches the workers in the batch's process group, in a run's last cells would leave it failed
    while (time.time() < deadline and process.poll() is None
           and "done" not in [run.status for run in plan([interrupted], prepare=False)[0]]):
        time.sleep(0.2)
    assert process.poll() is None, "the batch ended before a run was seen done"
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C after the first run
    assert process.wait(timeout=60) == 130
    runs_before, _ = plan([interrupted])
    finished = {run.folder / "results.csv": (run.folder / "results.csv").stat().st_mtime_ns
                for run in runs_before if run.status == "done"}
    assert 1 <= len(finished) < 3
    assert all(run.status in ("done", "failed", "pending") for run in runs_before)  # nothing half-written
    assert run_batch([interrupted], reports=False) == 0
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())  # not run again
    key = ["run_id", "lang", "split", "metric", "epoch"]
    resumed = load_results(runs).sort_values(key).reset_index(drop=True)
    expected = load_results(tmp_path / "complete" / "runs").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, expected)


def test_a_failing_run_is_recorded_and_the_others_go_on(mini_dir, tiny_model, tmp_path, capsys):
    good = small_grid(tmp_path, mini_dir, tiny_model, "good")
    (tmp_path / "no-such-model").mkdir()  # a folder with a broken model in it (a missing one is refused at planning)
    (tmp_path / "no-such-model" / "config.json").write_text("{")
    bad = write_params(tmp_path / "bad.yaml", mini_dir, tmp_path / "no-such-model", tmp_path / "good", [
        {"task": "pos", "methods": ["naive-co-train"], "k": [1], "seeds": [1], "languages": ["en", "qa"]}])
    assert run_batch([good, bad], reports=False) == 1
    (failed,) = (tmp_path / "good" / "runs" / "pos" / "naive-co-train" / "k1" / "seed1").iterdir()
    record = pd.read_json(failed / "FAILED.json", typ="series")
    assert "no-such-model" in record["error"] and Path(record["notebook"]).exists()
    assert not (failed / "results.csv").exists()
    assert len(list((tmp_path / "good" / "runs" / "ner").rglob("results.csv"))) == 3
    assert "1 failed" in capsys.readouterr().out
    assert [run.status for run in plan([bad])[0]] == ["failed"]


@pytest.mark.parametrize("change, message", [
    ({"grids": [{"task": "ner", "methods": ["ord-FS"], "k": [1], "sedes": [1]}]},
     r"grids\[0\]: unknown key\(s\) sedes; valid keys: task, methods, k, seeds"),
    ({"grids": [{"task": "ner", "methods": ["ord-fs"], "k": [1]}]},
     r"grids\[0\].methods: unknown method 'ord-fs'; valid methods: zero-shot, ord-FS"),
    ({"grids": [{"task": "ner", "methods": ["ord-FS"], "languages": ["en", "xx"]}]},
     r"grids\[0\].languages: unknown language\(s\) xx for ner; valid: "),
    ({"defaults": {"model": "m", "epoch": 3}, "grids": [{"task": "ner"}]},
     r"defaults: unknown key\(s\) epoch; valid keys: "),
])
def test_bad_parameter_file_fails_before_any_run(tmp_path, capsys, change, message):
    document = {"defaults": {"model": "m", "output_dir": str(tmp_path / "out")}, **change}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["batch", str(path)]) == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_shipped_parameter_files_are_valid():
    from fslib.batch.params import load_params

    root = Path(__file__).parent.parent / "params"
    # params/real/pos.yaml reads its languages from the UD folder beside the repository: tests/test_real_pos.py
    counts = {f"{path.parent.name}/{path.name}": len(load_params(path).runs) for path in root.glob("*/*.yaml")
              if path.parent.name != "real"}
    assert sorted(counts) == sorted([f"{kind}/{name}.yaml" for kind in ("mini", "paper")
                                     for name in ("ner", "pos", "tydiqa", "xnli", "script_study")] +
                                    [f"authors/{name}.yaml" for name in ("ner", "pos", "tydiqa", "xnli")] +
                                    ["mini/authors.yaml", "mini/aggregators.yaml"])
    # the paper's grid: zero-shot once per seed, five methods x K in {1, 5, 10} x seeds 1-5
    assert counts["paper/ner.yaml"] == 5 + 5 * 3 * 5
    assert counts["mini/ner.yaml"] == 2 + 5 * 2 * 2
    assert counts["mini/aggregators.yaml"] == 6 * 3  # naive, the paper's surgery and four surgeons x 3 seeds
