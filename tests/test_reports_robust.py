"""Reports that hold up: analyses that say what is missing instead of failing, a non-zero exit naming a report
that fails, results of several configurations kept apart, a build swapped in only when it finished (a killed
build leaves the old reports), a prompt stop on SIGTERM and SIGINT, and kernels shut down without the SIGINT
that made them log "KeyboardInterrupt caught in kernel".

One build runs the real analysis notebooks; the others run stand-in notebooks (FSLIB_NOTEBOOKS) through the
real `fslib reports` process, papermill and kernels, so that a report can fail or hang on purpose."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from fslib.analysis import tables as analysis
from fslib.analysis.reports import build_reports, plan_reports
from fslib.analysis.similarity import available_matrices, load_gradient_similarity
from fslib.cli import main
from fslib.store.results import COLUMNS

REPO = Path(__file__).resolve().parents[1]
LANGS = (("en", 80.0), ("qa", 50.0), ("qb", 40.0))


def write_run(runs: Path, method: str, k: int, seed: int, shift: float = 0.0, split: str = "test",
              config: dict | None = None, folder: str | None = None) -> Path:
    """A run folder with results.csv (test scores base + shift + seed + i per language) and its config.json."""
    config = {"task": "ner", "method": method, "k": k, "seed": seed, "model": "/models/tiny", **(config or {})}
    run_id = f"ner-{method}-k{k}-seed{seed}-{folder or 'x'}"
    rows = [{"task": "ner", "method": method, "k": k, "seed": seed, "lang": lang, "split": split, "metric": "f1",
             "value": base + shift + seed + i, "epoch": None, "step": None, "run_id": run_id, "config_hash": "h"}
            for i, (lang, base) in enumerate(LANGS)]
    path = runs / "ner" / method / f"k{k}" / f"seed{seed}" / (folder or "")
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path / "results.csv", index=False)
    (path / "config.json").write_text(json.dumps(config))
    return path


def write_similarity(run: Path, cosine: float) -> None:
    cells = [{"lang_a": a, "lang_b": b, "cosine": 1.0 if a == b else cosine} for a, _ in LANGS for b, _ in LANGS]
    pd.DataFrame(cells).to_csv(run / "gradient_similarity.csv", index=False)


def outputs_text(notebook: Path) -> str:
    executed = nbformat.read(notebook, as_version=4)
    return "".join(output.get("text", "") for cell in executed.cells if cell.cell_type == "code"
                   for output in cell.outputs)


# ---- the analyses, without a method or data they compare ---------------------------------------------------
def test_missing_methods_and_skipped_reports_say_what_is_absent(tmp_path):
    runs = tmp_path / "runs"
    for seed in (1, 2):
        write_run(runs, "co-FT", 5, seed)
        write_run(runs, "gradient-co-train", 5, seed, shift=3.0)
    results, notes = analysis.load_report_results(runs, separate=False)
    assert notes == [] and set(results["model"]) == {"tiny"}  # from config.json beside rows without a model
    assert analysis.missing_methods(results, analysis.METHOD_ORDER) == ["zero-shot", "ord-FS+dev", "ord-FS",
                                                                         "naive-co-train"]
    assert analysis.missing_methods(results, ["gradient-co-train"], "ner", k=1) == ["gradient-co-train"]
    jobs, skipped = plan_reports(results, runs)
    assert [name for name, _, _ in jobs] == ["main_results"]
    assert skipped == {
        "language_benefit_ner": "compares gradient-co-train with ord-FS; no test results of ord-FS",
        "gradient_heatmap_ner": "no run recorded gradient similarities (gradient_similarity: true in the grid)",
        "script_study_ner": "no gradient-single or gradient-subset runs (the script study's grids)",
        "overfitting_curves_ner": "no per-epoch dev scores of ord-FS+dev",
        "aggregators_ner": "no gradient-co-train runs with another surgeon (params/mini/aggregators.yaml)"}
    # Table 1 and its comparisons without zero-shot, ord-FS and naive-co-train: the methods there, nothing else
    main = analysis.main_table(results)
    assert list(main.index) == [("ner", 5, "co-FT"), ("ner", 5, "gradient-co-train")]
    assert main.loc[("ner", 5, "gradient-co-train"), "mean"] - main.loc[("ner", 5, "co-FT"), "mean"] == 3.0
    assert analysis.main_comparisons(results).empty


def test_heatmap_shows_the_methods_that_recorded_similarities(tmp_path):
    runs = tmp_path / "runs"
    write_similarity(write_run(runs, "gradient-co-train", 5, 1), 0.25)
    write_similarity(write_run(runs, "gradient-co-train", 5, 2), 0.75)
    table = load_gradient_similarity(runs)
    matrices, missing = available_matrices(table, ["naive-co-train", "gradient-co-train"], "ner", 5)
    assert missing == ["naive-co-train"] and list(matrices) == ["gradient-co-train"]
    assert matrices["gradient-co-train"].loc["qa", "qb"] == 0.5  # (0.25 + 0.75) / 2
    assert available_matrices(table, ["gradient-co-train"], "ner", 5, model="/other") == ({}, ["gradient-co-train"])


# ---- results of several configurations or models ---------------------------------------------------------
def test_an_ablation_is_kept_apart_not_averaged(tmp_path):
    runs = tmp_path / "runs"
    for seed in (1, 2):
        write_run(runs, "ord-FS", 5, seed)
        for alpha, shift in ((0.5, 2.0), (1.0, 10.0)):
            write_run(runs, "gradient-co-train", 5, seed, shift=shift, config={"alpha": alpha},
                      folder=f"alpha{alpha}")
    results, notes = analysis.load_report_results(runs)
    assert notes == ["ner gradient-co-train K=5: 2 configurations in the results (alpha=0.5; alpha=1.0), shown as "
                     "separate rows instead of averaged"]
    main = analysis.main_table(results)["mean"]
    ord_fs = main[("ner", 5, "ord-FS")]
    # each variant's own mean, 2 and 10 points above ord-FS; averaged together they would have shown +6
    assert main[("ner", 5, "gradient-co-train [alpha=0.5]")] - ord_fs == pytest.approx(2.0)
    assert main[("ner", 5, "gradient-co-train [alpha=1.0]")] - ord_fs == pytest.approx(10.0)
    assert ("ner", 5, "gradient-co-train") not in main.index
    assert analysis.missing_methods(results, ["gradient-co-train", "zero-shot"]) == ["zero-shot"]


def test_several_models_get_reports_of_their_own(tmp_path):
    runs = tmp_path / "runs"
    for model, shift in (("/models/xlmr-base", 0.0), ("hub/xlmr-large", 20.0)):
        for method in ("ord-FS", "gradient-co-train"):
            write_run(runs, method, 5, 1, shift=shift, config={"model": model}, folder=model.split("/")[-1])
    raw, notes = analysis.load_report_results(runs, separate=False)
    assert notes == ["2 models in these results (xlmr-large, xlmr-base): their rows are kept apart, never averaged "
                     "together"]
    jobs, _ = plan_reports(raw, runs)
    assert [(name, parameters.get("model")) for name, _, parameters in jobs] == [
        ("main_results_xlmr-large", "hub/xlmr-large"), ("language_benefit_ner_xlmr-large", "hub/xlmr-large"),
        ("main_results_xlmr-base", "xlmr-base"), ("language_benefit_ner_xlmr-base", "xlmr-base")]
    large, _ = analysis.load_report_results(runs, model="hub/xlmr-large")
    assert set(large["value"]) == {101.0, 72.0, 63.0}  # 80 + 20 + seed 1 + 0, ...: the large model's rows only


# ---- real builds ------------------------------------------------------------------------------------------
def test_grid_without_zero_shot_or_naive_builds_its_reports_with_notes(tmp_path):
    """The real analysis notebooks on a grid of co-FT and gradient-co-train (similarities recorded)."""
    runs = tmp_path / "runs"
    for seed in (1, 2):
        write_run(runs, "co-FT", 5, seed)
        write_similarity(write_run(runs, "gradient-co-train", 5, seed, shift=3.0), 0.5)
    old = tmp_path / "reports"
    old.mkdir()
    (old / "stale.html").write_text("from an earlier build")
    build = build_reports(tmp_path, jobs=2)
    assert build.ok and build.rebuilt, build.failed
    reports = tmp_path / "reports"
    assert not (reports / "stale.html").exists()  # the new build replaced the folder, not merged into it
    assert not list(tmp_path.glob(".reports-*"))
    main = outputs_text(reports / "main_results" / "main_results.ipynb")
    assert "Not in these results (their rows and comparisons are left out): zero-shot, ord-FS+dev, ord-FS, " \
           "naive-co-train" in main
    assert "No comparison: neither ord-FS nor naive-co-train is in the results." in main
    heatmap = outputs_text(reports / "gradient_heatmap_ner" / "gradient_heatmap_ner.ipynb")
    assert "naive-co-train: no gradient similarities for ner at K=5" in heatmap
    assert (reports / "gradient_heatmap_ner" / "gradient_heatmap.png").exists()
    assert not (reports / "gradient_heatmap_ner" / "gradient_similarity_naive-co-train.csv").exists()
    index = (reports / "index.html").read_text()
    assert "failed" not in index and "language_benefit_ner: compares gradient-co-train with ord-FS" in index
    # the executed notebooks name the reports folder they were swapped into, not the build folder
    injected = nbformat.read(reports / "main_results" / "main_results.ipynb", as_version=4).cells[2].source
    assert f'output_dir = "{reports / "main_results"}"' in injected


STAND_IN = """
import os, signal, subprocess, sys, time
from pathlib import Path
mode = os.environ.get("STAND_IN_" + Path(output_dir).name.upper(), "ok")
marks = Path(os.environ["STAND_IN_MARKS"])
(marks / f"{Path(output_dir).name}.pid").write_text(str(os.getpid()))
if mode == "raise":
    raise RuntimeError("this report cannot be drawn")
if mode == "hang":
    time.sleep(120)
if mode == "watch":  # a child in the kernel's process group that says whether a SIGINT reached the group
    watcher = ("import signal, sys, time\\n"
               "def note(signum, frame):\\n"
               "    open(sys.argv[1] + '.' + signal.Signals(signum).name, 'w').close()\\n"
               "    sys.exit(0)\\n"
               "signal.signal(signal.SIGINT, note)\\n"
               "signal.signal(signal.SIGTERM, note)\\n"
               "open(sys.argv[1] + '.ready', 'w').close()\\n"
               "time.sleep(30)\\n")
    child = subprocess.Popen([sys.executable, "-c", watcher, str(marks / "watcher")])
    (marks / "watcher.pid").write_text(str(child.pid))
    while not (marks / "watcher.ready").exists():
        time.sleep(0.05)
Path(output_dir).mkdir(parents=True, exist_ok=True)
(Path(output_dir) / "table.csv").write_text("a,b\\n1,2\\n")
print("drawn")
"""


@pytest.fixture
def stand_ins(tmp_path):
    """A folder of stand-in analysis notebooks (each does what STAND_IN_<REPORT> says), an output folder with
    ord-FS and gradient-co-train results (reports main_results and language_benefit_ner) and an earlier build."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("main_results", "language_benefit", "gradient_heatmap", "script_study", "overfitting_curves"):
        parameters = nbformat.v4.new_code_cell('results_path = ""\noutput_dir = ""\ntask = None\nk = None\n'
                                               'model = None')
        parameters.metadata["tags"] = ["parameters"]
        notebook = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(STAND_IN)])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, notebooks / f"{name}.ipynb")
    output = tmp_path / "out"
    write_run(output / "runs", "ord-FS", 5, 1)
    write_run(output / "runs", "gradient-co-train", 5, 1)
    (output / "reports").mkdir(parents=True)
    (output / "reports" / "index.html").write_text("the previous reports")
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "FSLIB_NOTEBOOKS": str(notebooks), "STAND_IN_MARKS": str(marks),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return output, marks, env


def start_reports(output: Path, env: dict, *extra: str) -> subprocess.Popen:
    # SIGINT at its default action, as at a terminal, even when the tests run in a background job (whose children
    # start with SIGINT ignored)
    return subprocess.Popen([sys.executable, "-m", "fslib.cli", "reports", str(output), "--jobs", "2", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def test_a_failing_report_fails_the_build_and_the_rest_is_published(stand_ins, monkeypatch, capfd):
    output, marks, env = stand_ins
    for key in ("FSLIB_NOTEBOOKS", "STAND_IN_MARKS"):  # in this process: the kernels inherit its environment
        monkeypatch.setenv(key, env[key])
    monkeypatch.setattr("fslib.core.execution.NOTEBOOKS", Path(env["FSLIB_NOTEBOOKS"]))
    monkeypatch.setenv("STAND_IN_LANGUAGE_BENEFIT_NER", "raise")
    monkeypatch.setenv("STAND_IN_MAIN_RESULTS", "watch")
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # leave pytest's own SIGTERM handling alone
    assert main(["reports", str(output), "--jobs", "2"]) == 1
    out, err = capfd.readouterr()
    assert "1 report(s) failed" in out and "language_benefit_ner: PapermillExecutionError" in out
    assert "this report cannot be drawn" in out
    index = (output / "reports" / "index.html").read_text()
    assert "failed: PapermillExecutionError" in index and 'href="main_results/table.csv"' in index
    assert not (output / "reports" / ".results-fingerprint").exists()  # so the next build tries again
    # the kernels were shut down without a SIGINT to their process group (jupyter_client's habit, which made
    # ipykernel log "KeyboardInterrupt caught in kernel." when it came during a message)
    # (ipykernel then ends its children with a SIGTERM on the way out: the watcher lived until then)
    assert not (marks / "watcher.SIGINT").exists() and (marks / "watcher.SIGTERM").exists()
    assert "KeyboardInterrupt caught" not in err


def test_interrupted_builds_leave_the_old_reports_and_stop_at_once(stand_ins):
    """SIGTERM and SIGINT while a report's cell runs (for 120 s): the build stops within seconds, kills the
    kernel, swaps nothing in and clears its folder; SIGINT ends with a message, not a traceback. What a SIGKILLed
    build leaves (its folder) is cleared by the next build."""
    output, marks, env = stand_ins
    env["STAND_IN_MAIN_RESULTS"] = "hang"
    old_index = (output / "reports" / "index.html").read_text()
    killed = output / f".reports-build-{socket.gethostname()}-{dead_pid()}"
    (killed / "main_results").mkdir(parents=True)
    (killed / "index.html").write_text("half a build")

    for signum, code in ((signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)):
        (marks / "main_results.pid").unlink(missing_ok=True)
        process = start_reports(output, env, "--jobs", "1")
        wait_for(marks / "main_results.pid")
        kernel = int((marks / "main_results.pid").read_text())
        sent = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
        took = time.monotonic() - sent
        assert process.returncode == code, (signum, out, err)
        assert took < 10, f"{signal.Signals(signum).name}: stopped after {took:.1f}s"  # not after the 120 s cell
        assert not alive(kernel)
        assert (output / "reports" / "index.html").read_text() == old_index
        assert not list(output.glob(".reports-*"))  # the killed build's folder and this one's, both cleared
        assert "Traceback" not in err, err
    assert "fslib reports: interrupted" in err


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_swap_killed_half_way_is_repaired(tmp_path):
    """Where the file system cannot exchange two folders in one rename, the old reports are renamed aside
    first; a build killed right then leaves no reports/ but the old ones beside it: the next build puts them
    back before deciding anything."""
    from fslib.analysis.reports import _recover, _swap_in

    aside = tmp_path / f".reports-old-{socket.gethostname()}-{dead_pid()}"
    aside.mkdir()
    (aside / "index.html").write_text("old")
    _recover(tmp_path, tmp_path / "reports")
    assert (tmp_path / "reports" / "index.html").read_text() == "old" and not aside.exists()
    new = tmp_path / ".reports-build-here-1"
    new.mkdir()
    (new / "index.html").write_text("new")
    _swap_in(new, tmp_path / "reports")
    assert (tmp_path / "reports" / "index.html").read_text() == "new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["reports"]
