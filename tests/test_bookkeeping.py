"""Batch bookkeeping: which runs count as done, changed, running, failed or pending (`fslib.batch.planning.plan`,
`fslib status`), and what a failure leaves behind: a run that fails in a late notebook cell, after its rows were
written, and runs whose source model failed to train."""

import json
import socket
from pathlib import Path

import pytest
import yaml

from fslib.batch.planning import plan, run_batch
from fslib.batch.processes import identity
from fslib.cli import main
from fslib.store.config import RunConfig, run_dir

FAST = {"epochs": 1, "learning_rate": 1.0e-3, "max_train_examples": 40, "max_eval_examples": 10}


def write_params(path: Path, grids: list, **defaults) -> Path:
    path.write_text(yaml.safe_dump({"defaults": {"source": "xtreme", **FAST, **defaults}, "grids": grids}))
    return path


@pytest.fixture
def grid(tmp_path):
    """Four naive-co-train runs (seeds 1-4) on a folder that needs no data to be planned."""
    params = write_params(tmp_path / "grid.yaml", [{"task": "ner", "methods": ["naive-co-train"], "k": [1],
                                                    "seeds": [1, 2, 3, 4], "languages": ["en", "de"]}],
                          model="some-hub-model", output_dir=str(tmp_path / "out"))
    runs, _ = plan([params], prepare=False)
    assert [run.status for run in runs] == ["pending"] * 4
    return params, [run.config for run in runs]


def finish(config: RunConfig, stored: RunConfig | None = None) -> Path:
    """What a finished run leaves: its rows, and the config they were computed with."""
    folder = run_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    (stored or config).save(folder / "config.json")
    (folder / "results.csv").write_text("lang,split,metric,value\nen,test,f1,50.0\n")
    return folder


def statuses(params) -> list[str]:
    return [run.status for run in plan([params], prepare=False)[0]]


def test_done_changed_failed_running_and_pending(grid, capsys):
    params, (done, edited, failed, running) = grid
    finish(done)
    # rows computed with another configuration (here: another learning rate) are not this run's rows
    finish(edited, stored=RunConfig(**{**edited.to_dict(), "learning_rate": 5e-3}))
    folder = run_dir(failed)
    folder.mkdir(parents=True)
    (folder / "FAILED.json").write_text(json.dumps({"config_hash": failed.config_hash, "error": "boom"}))
    folder = run_dir(running)
    folder.mkdir(parents=True)  # a job in flight on this machine: its worker's marker names a live process
    (folder / "worker.running.json").write_text(json.dumps({"executor": "local", **identity()}))
    assert statuses(params) == ["done", "changed", "failed", "running"]

    assert main(["status", str(params)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 runs: 1 done, 1 running, 1 failed, 1 changed")
    for run_config, status in zip(grid[1], ["done", "changed", "failed", "running"]):
        assert f"[{status:>7}] {run_config.run_id}  {run_dir(run_config)}" in out


def test_stale_markers_and_records_of_other_configs_do_not_count(grid):
    params, (edited_failure, dead, unreadable, rows_only) = grid
    folder = run_dir(edited_failure)
    folder.mkdir(parents=True)  # a failure of the configuration before an edit: run it again
    (folder / "FAILED.json").write_text(json.dumps({"config_hash": "0123456789ab", "error": "boom"}))
    folder = run_dir(dead)
    folder.mkdir(parents=True)  # the marker of a killed batch: its process is gone
    (folder / "worker.running.json").write_text(json.dumps({"executor": "local", "pid": 2 ** 22 + 1,
                                                            "host": socket.gethostname()}))
    folder = finish(unreadable)
    (folder / "config.json").write_text(json.dumps({"task": "ner", "no_such_field": 1}))  # another kit version
    folder = run_dir(rows_only)
    folder.mkdir(parents=True)
    (folder / "results.csv").write_text("lang,split,metric,value\n")  # rows without their config
    assert statuses(params) == ["pending", "pending", "changed", "pending"]


def test_status_of_a_bad_parameter_file_is_an_error(tmp_path, capsys):
    bad = write_params(tmp_path / "bad.yaml", [{"task": "ner", "methods": ["ord-FS"], "k": [0]}], model="m")
    assert main(["status", str(bad)]) == 2
    assert "grids[0].k: expected positive integers, got [0]" in capsys.readouterr().err


# ---- failures: what stays behind --------------------------------------------------------------------------
# the run's rows and config, written as the real notebook writes them once training and evaluation are done
WRITE_ROWS = ("from fslib.analysis.notebook import config_from_parameters\nfrom fslib.engine.runner import run_dir\n"
              "config = config_from_parameters(globals(), extra)\nfolder = run_dir(config)\n"
              "folder.mkdir(parents=True, exist_ok=True)\nconfig.save(folder / 'config.json')\n"
              "(folder / 'results.csv').write_text('lang,split,metric,value\\nen,test,f1,1\\n')")


def test_a_late_notebook_failure_leaves_no_rows_and_one_failure_record(mini_dir, tiny_model, tmp_path, monkeypatch,
                                                                       capsys, stand_in_ner_notebook):
    late_failing = stand_in_ner_notebook(WRITE_ROWS, "raise RuntimeError('the figure cell failed')")
    monkeypatch.setenv("FSLIB_NOTEBOOKS", str(late_failing))  # for the worker
    params = write_params(tmp_path / "late.yaml", [{"task": "ner", "methods": ["naive-co-train"], "k": [1],
                                                    "seeds": [1], "languages": ["en", "qa"]}],
                          model=str(tiny_model), data_dir=str(mini_dir), output_dir=str(tmp_path / "out"))
    assert run_batch([params], reports=False) == 1
    (run,) = plan([params], prepare=False)[0]
    assert run.status == "failed"
    assert not list((tmp_path / "out").rglob("results.csv"))
    assert [path.parent for path in (tmp_path / "out").rglob("FAILED.json")] == [run.folder]
    record = json.loads((run.folder / "FAILED.json").read_text())
    # written once, by the worker that saw the notebook fail: what the notebook said, the job's log
    assert record["error"].startswith("PapermillExecutionError") and "the figure cell failed" in record["error"]
    assert record["log"] == str(run.folder / "worker.log") and Path(record["log"]).exists()
    assert record["notebook"] == str(run.folder / "ner.ipynb") and Path(record["notebook"]).exists()
    assert record["config_hash"] == run.config.config_hash
    assert "0 ran now, 1 failed" in capsys.readouterr().out


def test_a_failed_source_model_fails_its_runs_and_names_the_log(mini_dir, tmp_path, capsys):
    (tmp_path / "no-such-model").mkdir()  # a folder with a broken model in it (a missing one is refused at planning)
    (tmp_path / "no-such-model" / "config.json").write_text("{")
    params = write_params(tmp_path / "source.yaml", [{"task": "ner", "methods": ["ord-FS", "co-FT"], "k": [1],
                                                      "seeds": [1], "languages": ["en", "qa"]}],
                          model=str(tmp_path / "no-such-model"), data_dir=str(mini_dir),
                          output_dir=str(tmp_path / "out"))
    assert run_batch([params], reports=False) == 1
    runs = plan([params], prepare=False)[0]
    assert [run.status for run in runs] == ["failed", "failed"]
    (log,) = (tmp_path / "out" / "source_models").glob("ner-seed1-*.log")
    assert "no-such-model" in log.read_text()
    for run in runs:
        record = json.loads((run.folder / "FAILED.json").read_text())
        assert record["error"] == f"its source model failed to train; log: {log}"
        assert not (run.folder / "ner.ipynb").exists()  # the run itself never started
    assert "0 ran now, 2 failed" in capsys.readouterr().out
