"""The run store: one folder per distinct computation (the config hash in the path, paths in the hash relative to
the output folder), result files checked when read (manifest: sizes, checksums, row count), and a failing rerun
that never takes the old results with it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fslib.batch.planning import plan, run_batch
from fslib.cli import main
from fslib.store.config import RunConfig, run_dir
from fslib.store.ledger import legacy_run_folders, result_set, source_model_folder, write_run
from fslib.store.provenance import PROVENANCE_COLUMNS
from fslib.store.results import COLUMNS, MANIFEST_FILE, Row, load_results, rows_frame

FAST = {"epochs": 1, "learning_rate": 1.0e-3, "max_train_examples": 40, "max_eval_examples": 10,
        "eval_batch_size": 64, "progress": False}
GRID = {"task": "ner", "methods": ["naive-co-train"], "k": [1], "seeds": [1], "languages": ["en", "qa"]}


def write_params(path: Path, grids: list, **defaults) -> Path:
    path.write_text(yaml.safe_dump({"defaults": {"source": "xtreme", **FAST, **defaults}, "grids": grids}))
    return path


def checkout_params(root: Path) -> Path:
    """The grid of a checkout at `root`: its outputs, data and model all inside it."""
    return write_params(root / "grid.yaml", [GRID], model=str(root / "models" / "tiny-xlmr"),
                        data_dir=str(root / "data"), output_dir=str(root / "outputs"))


def snapshot(folder: Path) -> dict[str, bytes]:
    """The bytes of every file of the folder's finished run."""
    return {name: (folder / name).read_bytes() for name in result_set(folder)}


@pytest.fixture(scope="module")
def checkout(mini_dir, tiny_model, tmp_path_factory):
    """A checkout with one finished run (trained and written by run_experiment, in this process to save a kernel's
    start): root/{grid.yaml, data, models, outputs}."""
    from fslib.engine.runner import run_experiment

    root = tmp_path_factory.mktemp("store") / "checkout"
    shutil.copytree(mini_dir, root / "data")
    shutil.copytree(tiny_model, root / "models" / "tiny-xlmr")
    (run,) = plan([checkout_params(root)], prepare=False)[0]
    assert run.status == "pending"
    run_experiment(run.config)
    (run,) = plan([checkout_params(root)], prepare=False)[0]
    assert run.status == "done"
    return root, run


def copy_of(checkout, target: Path) -> tuple[Path, Path]:
    """The checkout copied to another absolute path; its grid file, and its run's folder there."""
    root, run = checkout
    shutil.copytree(root, target, symlinks=True)
    params = checkout_params(target)
    (moved,) = plan([params], prepare=False)[0]
    return params, moved.folder


# ---- one folder per computation ------------------------------------------------------------------------------
def finish(config: RunConfig) -> Path:
    """A finished run written through the ledger, as run_experiment writes it (rows of two languages)."""
    c = config.resolved()
    rows = [Row("en", "test", "f1", 80.0, 1, 10), Row("de", "test", "f1", 40.0 + c.learning_rate * 1e4, 1, 10)]
    frame = rows_frame(rows, task=c.task, method=c.label, model=c.model, k=c.k, seed=c.seed, run_id=c.run_id,
                       config_hash=c.config_hash)
    write_run(run_dir(c), c, frame, {"surgery": pd.DataFrame({"epoch": [1], "surgery_rate": [0.5]})})
    return run_dir(c)


def test_runs_that_differ_only_in_model_alpha_or_lr_get_folders_of_their_own(tmp_path, capsys):
    base = {"source": "xtreme", "output_dir": str(tmp_path / "out")}
    grid = {**GRID, "methods": ["gradient-co-train"], "languages": ["en", "de"]}
    files = [write_params(tmp_path / "a.yaml", [grid], model="model-a", **base),
             write_params(tmp_path / "b.yaml", [grid], model="model-b", **base),
             write_params(tmp_path / "c.yaml", [{**grid, "config": {"alpha": 0.5}}], model="model-a", **base),
             write_params(tmp_path / "d.yaml", [{**grid, "config": {"learning_rate": 1e-4}}], model="model-a",
                          **base)]
    runs = [plan([path], prepare=False)[0][0] for path in files]
    assert len({run.folder for run in runs}) == len({run.config.run_id for run in runs}) == 4
    for run in runs:
        finish(run.config)
    assert [plan([path], prepare=False)[0][0].status for path in files] == ["done"] * 4  # none overwrote another
    assert main(["status", *map(str, files)]) == 0
    assert capsys.readouterr().out.startswith("4 runs: 4 done\n")
    results = load_results(tmp_path / "out" / "runs")
    assert list(results.columns) == COLUMNS + PROVENANCE_COLUMNS
    assert results.groupby("model").run_id.nunique().to_dict() == {"model-a": 3, "model-b": 1}
    assert sorted(results[results.lang == "de"].value) == [41.0, 50.0, 50.0, 50.0]  # 40 + lr * 1e4 per run


# ---- a moved checkout -------------------------------------------------------------------------------------------
def test_a_moved_checkout_keeps_its_runs_done(checkout, tmp_path, capsys):
    root, run = checkout
    params, folder = copy_of(checkout, tmp_path / "elsewhere" / "checkout")
    assert folder != run.folder and str(root) not in str(folder)
    assert [moved.status for moved in plan([params], prepare=False)[0]] == ["done"]
    assert main(["status", str(params)]) == 0
    assert "1 runs: 1 done" in capsys.readouterr().out
    moved, original = load_results(folder), load_results(run.folder)
    pd.testing.assert_frame_equal(moved, original)
    assert set(moved.model) == {"tiny-xlmr"} and (moved.config_hash == run.config.config_hash).all()
    (moved_run,) = plan([params], prepare=False)[0]  # and its source models keep their folders too
    assert (source_model_folder(moved_run.config).relative_to(tmp_path / "elsewhere" / "checkout")
            == source_model_folder(run.config).relative_to(root))


# ---- result files verified when read ------------------------------------------------------------------------
def test_a_truncated_results_file_makes_its_run_corrupt_and_the_batch_runs_it_again(checkout, tmp_path, capsys):
    root, run = checkout
    params, folder = copy_of(checkout, tmp_path / "copy")
    original = (folder / "results.csv").read_bytes()
    (folder / "results.csv").write_bytes(original[:len(original) * 2 // 3])  # cut mid-row
    (folder / "FAILED.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")  # and a garbled failure record beside it
    assert main(["status", str(params)]) == 0
    out = capsys.readouterr().out
    assert "1 runs: 1 corrupt" in out and f"{folder / 'results.csv'}: " in out
    with pytest.raises(ValueError, match=f"{folder / 'results.csv'}: does not match"):
        load_results(tmp_path / "copy" / "outputs" / "runs")

    assert run_batch([params], reports=False) == 0  # run again
    assert [rerun.status for rerun in plan([params], prepare=False)[0]] == ["done"]
    assert "0 runs were already done, 1 ran now, 0 failed" in capsys.readouterr().out
    key = ["lang", "split", "metric", "epoch"]
    rerun, first = (load_results(path)[COLUMNS].sort_values(key).reset_index(drop=True)
                    for path in (folder, run.folder))
    pd.testing.assert_frame_equal(rerun, first)  # the same numbers (provenance, e.g. the commit, may have moved on)


@pytest.mark.parametrize("damage", ["empty", "binary", "edited", "no manifest, cut", "manifest"])
def test_damaged_result_files_are_corrupt_with_the_file_named(tmp_path, damage, capsys):
    params = write_params(tmp_path / "grid.yaml", [{**GRID, "languages": ["en", "de"]}], model="m",
                          output_dir=str(tmp_path / "out"))
    config = plan([params], prepare=False)[0][0].config
    folder = finish(config)
    results = folder / "results.csv"
    named = folder / MANIFEST_FILE if damage == "manifest" else results
    if damage == "empty":
        results.write_bytes(b"")
    elif damage == "binary":
        results.write_bytes(os.urandom(len(results.read_bytes())))
    elif damage == "edited":  # same size, another number: only the checksum sees it
        results.write_text(results.read_text().replace("80.0", "90.0"))
    elif damage == "manifest":
        (folder / MANIFEST_FILE).write_text('{"files": {"results.csv": ')
    else:  # a run of an older kit (no manifest) whose rows were cut
        (folder / MANIFEST_FILE).unlink()
        results.write_text(results.read_text()[:-12])
    assert [run.status for run in plan([params], prepare=False)[0]] == ["corrupt"]
    assert main(["status", str(params)]) == 0
    assert f"            {named}: " in capsys.readouterr().out
    with pytest.raises(ValueError, match=str(named)):
        load_results(tmp_path / "out")
    finish(config)  # written again over the damaged set
    assert [run.status for run in plan([params], prepare=False)[0]] == ["done"]
    assert len(load_results(tmp_path / "out")) == 2


@pytest.mark.parametrize("record", [b"", b'{"config_hash": "abc', b"\xff\xfe\x00garbage", b"[1, 2]", b"null", "dir"])
def test_a_corrupt_failure_record_does_not_stop_status_or_batch(tmp_path, mini_dir, record):
    params = write_params(tmp_path / "grid.yaml", [{**GRID, "seeds": [1, 2]}], model="m",
                          data_dir=str(mini_dir), output_dir=str(tmp_path / "out"))  # data the preflight accepts
    first = plan([params], prepare=False)[0][0]
    first.folder.mkdir(parents=True)
    if record == "dir":
        (first.folder / "FAILED.json").mkdir()
    else:
        (first.folder / "FAILED.json").write_bytes(record)
    assert [run.status for run in plan([params], prepare=False)[0]] == ["pending", "pending"]
    assert main(["status", str(params)]) == 0
    assert main(["batch", str(params), "--dry-run"]) == 0


def test_load_results_reads_core_columns_from_elsewhere_and_names_a_broken_file(tmp_path):
    elsewhere = tmp_path / "runs" / "paper"
    elsewhere.mkdir(parents=True)
    (elsewhere / "results.csv").write_text("task,method,k,seed,lang,split,metric,value\n"
                                           "ner,gradient-co-train,5,1,de,test,f1,81.5\n"
                                           "ner,ord-FS,5,1,de,test,f1,\n")  # an undefined score stays NaN
    rows = load_results(tmp_path / "runs")
    assert list(rows.columns) == COLUMNS + PROVENANCE_COLUMNS and len(rows) == 2
    assert rows.model.tolist() == ["unknown"] * 2 and rows.run_id.tolist() == ["ner-gradient-co-train-k5-seed1",
                                                                                "ner-ord-FS-k5-seed1"]
    assert rows.value.iloc[0] == 81.5 and pd.isna(rows.value.iloc[1]) and rows.epoch.isna().all()
    (elsewhere / "config.json").write_text(json.dumps({"model": "/models/xlm-roberta-large"}))
    assert set(load_results(elsewhere / "results.csv").model) == {"xlm-roberta-large"}  # an older run's config says

    broken = tmp_path / "runs" / "broken" / "results.csv"
    broken.parent.mkdir()
    broken.write_bytes(b"\x00\x01\x02\xff")
    lacking = tmp_path / "runs" / "lacking" / "results.csv"
    lacking.parent.mkdir()
    lacking.write_text("lang,metric,value\nde,f1,3\n")
    with pytest.raises(ValueError) as error:
        load_results(tmp_path / "runs")
    assert f"{broken}: not a CSV file" in str(error.value)
    assert f"{lacking}: no column(s) task, method, k, seed, split" in str(error.value)
    with pytest.warns(UserWarning, match=str(broken)):
        assert len(load_results(tmp_path / "runs", skip_unreadable=True)) == 2


# ---- a failing rerun keeps the old results ----------------------------------------------------------------------
# the run's files, written as run_experiment writes them (other rows)
WRITE_RUN = ("from fslib.store.config import RunConfig, field_names, run_dir\n"
             "from fslib.store.ledger import write_run\n"
             "from fslib.store.results import Row, rows_frame\n"
             "c = RunConfig(**{name: globals()[name] for name in field_names() if name in globals()}, **extra)\n"
             "rows = rows_frame([Row('en', 'test', 'f1', 1.0)], task=c.task, method=c.label, model=c.model, k=c.k,\n"
             "                  seed=c.seed, run_id=c.run_id, config_hash=c.config_hash)\n"
             "write_run(run_dir(c), c, rows, {'surgery': rows})")


@pytest.mark.parametrize("after_writing", [False, True])
def test_a_failing_rerun_keeps_the_old_results_whole(checkout, tmp_path, after_writing, stand_in_ner_notebook):
    """The rerun fails before any results are written (a training error, say), or after it wrote the run's files
    (a later cell, a figure, fails)."""
    params, folder = copy_of(checkout, tmp_path / "copy")
    (run,) = plan([params], prepare=False)[0]
    before = snapshot(folder)
    assert {"results.csv", "config.json", "manifest.json", "training.csv", "timings.json"} <= set(before)
    job = {"kind": "run", "config": run.config.to_dict(), "log": str(folder / "worker.log")}
    failing = stand_in_ner_notebook(*[WRITE_RUN] * after_writing, "raise RuntimeError('this attempt failed')")
    environment = {**os.environ, "FSLIB_NOTEBOOKS": str(failing)}
    worker = subprocess.run([sys.executable, "-m", "fslib.batch.worker", json.dumps(job)], env=environment,
                            capture_output=True, text=True, timeout=300)
    assert worker.returncode == 1 and "this attempt failed" in worker.stdout + worker.stderr
    assert snapshot(folder) == before  # every file of the old set, byte for byte (timings.json differs per attempt)
    assert json.loads((folder / "FAILED.json").read_text())["error"].startswith("PapermillExecutionError")
    assert [again.status for again in plan([params], prepare=False)[0]] == ["done"]


# ---- the layout before the config hash was part of the folder -------------------------------------------------
def test_runs_of_the_old_layout_are_named_and_migrated(tmp_path, capsys):
    params = write_params(tmp_path / "grid.yaml", [{**GRID, "languages": ["en", "de"]},
                                                   {**GRID, "languages": ["en", "de"], "label": "gradient-single",
                                                    "methods": ["gradient-co-train"], "target_sets": [["de"]]}],
                          model="m", data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "out"))
    runs = plan([params], prepare=False)[0]
    for run in runs:  # where the kit before this layout wrote them: the folder without its last part
        finish(run.config)
        old = run.folder.parent
        for path in run.folder.iterdir():
            if path.name != MANIFEST_FILE:
                path.rename(old / path.name)
        shutil.rmtree(run.folder)
    assert legacy_run_folders(tmp_path / "out") == sorted(run.folder.parent for run in runs)
    assert main(["status", str(params)]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 2 pending" in out and f"note: 2 run folders under {tmp_path / 'out' / 'runs'}" in out
    assert main(["migrate", str(tmp_path / "out")]) == 0
    assert [run.status for run in plan([params], prepare=False)[0]] == ["done", "done"]
    assert legacy_run_folders(tmp_path / "out") == []
