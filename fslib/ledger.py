"""The state of run folders and source-model folders on disk, and the only code that writes it.

A run folder (`fslib.config.run_dir`) holds:

    config.json             the run's RunConfig
    <table>.csv             extra tables (surgery.csv, gradient_similarity.csv)
    predictions.jsonl.gz    the final test predictions, what the task notebooks' views read
    results.csv             the rows, written last and atomically: a folder with it is a finished run
    FAILED.json             why the last attempt failed, where to look, and the config hash it ran with
    worker.log              a batch job's output; `worker.running.json` beside it while the job is in flight

A source-model folder (`source_model_folder`) holds the model and tokenizer and `source_training.json`, written
last, so its presence marks a finished source model.

A run's status (`run_status`) is read from these files alone: done, running, failed, pending, or changed (results
of another configuration: to run again).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fslib.config import RunConfig, run_dir, stage_hyperparameters
from fslib.data import stable_seed
from fslib.data.ud import ud_files
from fslib.data.xtreme import xtreme_path
from fslib.files import write_atomic
from fslib.languages import SOURCE_LANG
from fslib.results import CONFIG_FILE, RESULTS_FILE

FAILED_FILE = "FAILED.json"
TIMINGS_FILE = "timings.json"  # seconds per phase of a run or a source training (fslib.timing)
PREDICTIONS_FILE = "predictions.jsonl.gz"
RUN_LOG = "worker.log"
SOURCE_RECORD = "source_training.json"
STATUSES = ("done", "running", "pending", "failed", "changed")


# ---- jobs and their outcomes ------------------------------------------------------------------------------
@dataclass
class Job:
    """One unit of work of a batch, run by an executor in a process of its own (see fslib.worker.execute)."""

    kind: str  # "source" | "run"
    config: dict  # RunConfig fields
    folder: Path  # what the job makes: a run folder, or a source model folder
    log: Path  # where the job's output goes
    name: str

    def payload(self) -> dict:
        return {"kind": self.kind, "config": self.config, "log": str(self.log)}


@dataclass
class Outcome:
    job: Job
    ok: bool
    error: str | None = None
    log: Path | None = None  # the job's log, where to look first
    skipped: str | None = None  # not started: its run was found "done" or "running" (elsewhere) just before


# ---- running markers --------------------------------------------------------------------------------------
def running_marker(log: Path) -> Path:
    """Where a job in flight says so, beside its log: read by `run_status`."""
    return log.with_name(log.stem + ".running.json")


def mark_running(log: Path, record: dict) -> None:
    """`record` says which executor runs the job and how to find it ({"executor": name, ...}); written atomically
    (and rewritten as a heartbeat), so that a reader never takes a half-written marker for none."""
    write_atomic(running_marker(log), lambda temporary: Path(temporary).write_text(json.dumps(record)))


def clear_running(log: Path) -> None:
    running_marker(log).unlink(missing_ok=True)


def running_record(log: Path) -> dict | None:
    """The marker a job in flight left beside `log`, if any (it may be stale: ask the executor)."""
    try:
        return json.loads(running_marker(log).read_text())
    except (OSError, ValueError):
        return None


# ---- finished runs -----------------------------------------------------------------------------------------
def write_run(folder: Path, config: RunConfig, rows: pd.DataFrame, tables: dict[str, pd.DataFrame],
              predictions: list[dict] | None = None, timings: dict[str, float] | None = None) -> None:
    """A finished run's files (with `timings`: where its time went, in seconds); the rows last, so that a folder
    with results.csv is complete."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("*.csv"), folder / PREDICTIONS_FILE]:  # a new config may not make the old tables
        old.unlink(missing_ok=True)
    write_atomic(folder / CONFIG_FILE, lambda temporary: config.save(temporary))
    for name, table in tables.items():
        write_atomic(folder / f"{name}.csv", lambda temporary, table=table: table.to_csv(temporary, index=False))
    if predictions:
        write_atomic(folder / PREDICTIONS_FILE, lambda temporary: _write_jsonl_gz(temporary, predictions))
    if timings:
        write_timings(folder, timings)
    write_atomic(folder / RESULTS_FILE, lambda temporary: rows.to_csv(temporary, index=False))


def write_timings(folder: Path, timings: dict[str, float]) -> None:
    """Where a run's or a source training's time went (seconds per phase, fslib.timing)."""
    (folder / TIMINGS_FILE).write_text(json.dumps(timings, indent=1) + "\n")


def _write_jsonl_gz(path: str, records: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=3) as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_predictions(folder: Path | str) -> list[dict]:
    """The final test predictions a run kept (empty for runs of older versions of the kit)."""
    path = Path(folder) / PREDICTIONS_FILE
    if not path.exists():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def discard_results(folder: Path) -> None:
    """Rows of an attempt that failed after writing them belong to a failed run."""
    (folder / RESULTS_FILE).unlink(missing_ok=True)


# ---- failures -------------------------------------------------------------------------------------------------
def record_failure(folder: Path, config: RunConfig, error: str, notebook: Path | None = None,
                   started: float | None = None, log: Path | None = None) -> None:
    """Write FAILED.json: the error, where to look (executed notebook, log) and the run's config hash."""
    if len(error) > 4000:  # keep how it starts (what failed) and how it ends (the exception)
        error = f"{error[:1500]} [...] {error[-2500:]}"
    record = {"run_id": config.run_id, "config_hash": config.config_hash, "error": error,
              "notebook": str(notebook) if notebook else None, "log": str(log) if log else None,
              "seconds": round(time.time() - started, 1) if started else None}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / FAILED_FILE, lambda temporary: Path(temporary).write_text(json.dumps(record, indent=1)))


def failure(folder: Path) -> dict | None:
    """The failure record of the run folder's last attempt, if it failed."""
    try:
        return json.loads((folder / FAILED_FILE).read_text())
    except (OSError, ValueError):
        return None


def clear_failure(folder: Path) -> None:
    (folder / FAILED_FILE).unlink(missing_ok=True)


# ---- status ----------------------------------------------------------------------------------------------------
def run_status(config: RunConfig, is_alive: Callable[[dict], bool]) -> str:
    """done | running | failed | pending | changed. `is_alive(marker record)` tells whether the job that left a
    running marker still lives (fslib.executors.job_alive asks the executor that wrote it)."""
    folder = run_dir(config)
    marker = running_record(folder / RUN_LOG)
    if marker is not None and is_alive(marker):
        return "running"
    if (folder / RESULTS_FILE).exists() and (folder / CONFIG_FILE).exists():
        try:
            stored = RunConfig.load(folder / CONFIG_FILE).config_hash
        except (TypeError, ValueError):  # written by another version of the kit
            stored = None
        return "done" if stored == config.config_hash else "changed"
    record = failure(folder)
    if record is not None and record.get("config_hash") == config.config_hash:
        return "failed"
    return "pending"


# ---- source models ----------------------------------------------------------------------------------------------
def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def source_model_folder(config: RunConfig) -> Path:
    """Where the source-trained model of `config` lives: one folder per (task, model, seed, hyper-parameters,
    data), shared by zero-shot, ord-FS, ord-FS+dev and co-FT. The data and a local model count by their files'
    sizes and modification times, so regenerating them trains anew."""
    c = config.resolved()
    stamps = []
    if c.source == "xtreme":
        splits = ("train",) if c.task == "tydiqa" else ("train", "dev")
        stamps += [_stamp(xtreme_path(c.data_dir, c.task, SOURCE_LANG, split)) for split in splits]
    if c.source == "ud":
        stamps += [_stamp(path) for path in ud_files(c.data_dir, SOURCE_LANG, c.treebank(SOURCE_LANG))]
    if Path(c.model).is_dir():
        stamps += [_stamp(path) for path in sorted(Path(c.model).iterdir()) if path.is_file()]
    key = stable_seed(c.task, c.model, c.seed, c.source, json.dumps(stage_hyperparameters(c, adapting=False),
                      sort_keys=True), c.max_length, c.doc_stride, c.max_query_length, c.selection, c.hold_out_source_dev,
                      c.max_train_examples, c.max_eval_examples, *stamps)
    return Path(c.output_dir) / "source_models" / f"{c.task}-seed{c.seed}-{key:016x}"


def source_model_done(folder: Path) -> bool:
    return (folder / SOURCE_RECORD).exists()


def write_source_record(folder: Path, record: dict) -> None:
    """Written last into a source model's folder: it marks the model finished."""
    (folder / SOURCE_RECORD).write_text(json.dumps(record, indent=1))


def read_source_record(folder: Path) -> dict:
    return json.loads((folder / SOURCE_RECORD).read_text())
