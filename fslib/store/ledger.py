"""The state of run folders and source-model folders on disk, and the only code that writes it.

A run folder (`fslib.store.config.run_dir`: `runs/<task>/<label>/k<K>/seed<S>[/<targets>]/<model>-<config hash>`) holds:

    config.json             the run's RunConfig
    <table>.csv             extra tables (surgery.csv, gradient_similarity.csv, training.csv)
    predictions.jsonl.gz    the final test predictions, what the task notebooks' views read
    provenance.json         what produced the run: kit commit, libraries, device, data and model checksums
    results.csv             the rows
    manifest.json           the size and checksum of each file above and the row count: a folder whose files match
                            it is a finished run; written last
    FAILED.json             why the last attempt failed, where to look, and the config hash it ran with
    worker.log              a batch job's output; `worker.running.json` beside it while the job is in flight

A finished run's files are written as one set (`write_run`): every file to a temporary name first, then renamed
into place, the manifest last; the set it replaces is kept beside it (`.<name>.previous`) until the next one, so
that an attempt that fails after writing its set can put the old one back (`discard_results`). Old results are
never deleted by a run that fails.

A source-model folder (`source_model_folder`) holds the model and tokenizer and `source_training.json`, written
last, so its presence marks a finished source model.

A run's status (`run_status`) is read from these files alone: done, running, failed, pending, changed (results
of another configuration: to run again) or corrupt (result files that do not match their manifest, or cannot be
read: to run again; `corruption` says which file and how).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fslib.core.containment import files_named, inside, member
from fslib.core.files import fingerprint, temporary_beside, write_atomic
from fslib.core.languages import SOURCE_LANG
from fslib.formats.seeds import stable_seed
from fslib.formats.ud import ud_files
from fslib.formats.uner import uner_files
from fslib.formats.xtreme import xtreme_path
from fslib.store.config import (
    TRAIN_CAP_RULE,
    RunConfig,
    is_local_path,
    portable_path,
    run_dir,
    run_subpath,
    stage_hyperparameters,
)
from fslib.store.content_keys import content_stamp
from fslib.store.provenance import PROVENANCE_FILE
from fslib.store.results import CONFIG_FILE, MANIFEST_FILE, RESULTS_FILE, read_manifest, results_problem

FAILED_FILE = "FAILED.json"
TIMINGS_FILE = "timings.json"  # seconds per phase of a run or a source training (fslib.core.timing)
PREDICTIONS_FILE = "predictions.jsonl.gz"
RUN_LOG = "worker.log"
SOURCE_RECORD = "source_training.json"
STATUSES = ("done", "running", "pending", "failed", "changed", "corrupt")
PREVIOUS = ".{}.previous"  # a file of the set the last write replaced, kept until the next write


# ---- jobs and their outcomes ------------------------------------------------------------------------------
@dataclass
class Job:
    """One unit of work of a batch, run by an executor in a process of its own (see fslib.batch.worker.execute)."""

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
    marker = member(log.parent, running_marker(log).name)  # None: it resolves outside its folder
    try:
        return json.loads(marker.read_text()) if marker else None
    except (OSError, ValueError):
        return None


# ---- finished runs -----------------------------------------------------------------------------------------
def write_run(folder: Path, config: RunConfig, rows: pd.DataFrame, tables: dict[str, pd.DataFrame],
              predictions: list[dict] | None = None, timings: dict[str, float] | None = None,
              provenance: dict | None = None) -> None:
    """A finished run's files (with `timings`: where its time went, in seconds; with `provenance`: what produced
    it, fslib.store.provenance), written as one set: each file
    to a temporary name, then renamed into place, the manifest (sizes, checksums, row count) last. The set it
    replaces is kept as `.<name>.previous` files until the next write (see `discard_results`)."""
    folder.mkdir(parents=True, exist_ok=True)
    writers = {CONFIG_FILE: lambda path: config.save(path)}
    for name, table in tables.items():
        writers[f"{name}.csv"] = lambda path, table=table: table.to_csv(path, index=False)
    if predictions:
        writers[PREDICTIONS_FILE] = lambda path: _write_jsonl_gz(path, predictions)
    if timings:
        writers[TIMINGS_FILE] = lambda path: Path(path).write_text(json.dumps(timings, indent=1) + "\n")
    if provenance:
        writers[PROVENANCE_FILE] = lambda path: Path(path).write_text(json.dumps(provenance, indent=1) + "\n")
    writers[RESULTS_FILE] = lambda path: rows.to_csv(path, index=False)
    staged: dict[str, Path] = {}
    try:
        for name, write in writers.items():
            staged[name] = _temporary(folder, name)
            write(str(staged[name]))
        manifest = {"run_id": config.run_id, "config_hash": config.config_hash, "rows": len(rows),
                    "written": time.time(), "files": {name: fingerprint(path) for name, path in staged.items()}}
        staged[MANIFEST_FILE] = _temporary(folder, MANIFEST_FILE)
        staged[MANIFEST_FILE].write_text(json.dumps(manifest, indent=1) + "\n")
        _commit(folder, staged)
    finally:
        for path in staged.values():
            path.unlink(missing_ok=True)


def _temporary(folder: Path, name: str) -> Path:
    return temporary_beside(folder, name)


def result_set(folder: Path) -> list[str]:
    """The names of the files that make up the finished run in `folder`: those its manifest lists, or for runs
    written before manifests, what `write_run` wrote then."""
    try:
        manifest = read_manifest(folder)
    except ValueError:  # unreadable: what an older kit wrote, and the manifest itself
        manifest = None
    if manifest is not None:
        return [name for name in [*manifest["files"], MANIFEST_FILE] if member(folder, name)]
    return [path.name for path in [folder / CONFIG_FILE, *sorted(folder.glob("*.csv")), folder / PREDICTIONS_FILE,
                                   folder / TIMINGS_FILE, folder / MANIFEST_FILE] if member(folder, path.name)
            and path.is_file()]


def _commit(folder: Path, staged: dict[str, Path]) -> None:
    """Rename a staged set into place, keeping the set it replaces as `.previous` files; the manifest last, so a
    crash half-way leaves files that do not match the manifest (corrupt: rerun), never a mix that looks done."""
    for stale in folder.glob(PREVIOUS.format("*")):
        stale.unlink()
    old = [name for name in result_set(folder) if (folder / name).is_file()]  # a damaged set may lack some
    for name in old:
        _keep_copy(folder / name, folder / PREVIOUS.format(name))
    for name, path in staged.items():
        if name != MANIFEST_FILE:
            os.replace(path, folder / name)
    for name in old:  # a new configuration may not make the old tables
        if name not in staged:
            (folder / name).unlink(missing_ok=True)
    os.replace(staged[MANIFEST_FILE], folder / MANIFEST_FILE)


def _keep_copy(path: Path, keep: Path) -> None:
    try:
        os.link(path, keep)  # the renames that follow replace the name, not the data: a link costs nothing
    except OSError:
        shutil.copy2(path, keep)


def corruption(folder: Path) -> str | None:
    """What is wrong with the result files of `folder`, naming the file; None when they are whole. With a
    manifest: every file it lists has its size and checksum (predictions: size only, they can be large) and the
    rows their count; without (runs written before manifests): results.csv is text with a header and whole
    rows (fslib.store.results.results_problem)."""
    try:
        manifest = read_manifest(folder)
    except ValueError as error:
        return str(error)
    names = dict.fromkeys([*(manifest or {}).get("files", {}), RESULTS_FILE, CONFIG_FILE])
    outside = [name for name in names if member(folder, name) is None]
    if outside:  # never read: a crafted manifest or a symlink must not make the kit look outside the folder
        return f"{folder / outside[0]}: not a file of {folder} (resolves outside it, or not a plain file name)"
    if manifest is None:
        return results_problem(folder / RESULTS_FILE)
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            return f"{path}: missing (listed in {folder / MANIFEST_FILE})"
        if path.stat().st_size != expected.get("bytes"):
            return (f"{path}: {path.stat().st_size} bytes, {expected.get('bytes')} when written "
                    f"(truncated or changed since)")
        if name != PREDICTIONS_FILE and fingerprint(path)["sha256"] != expected.get("sha256"):
            return f"{path}: checksum differs from the one recorded in {folder / MANIFEST_FILE} (changed since)"
    return results_problem(folder / RESULTS_FILE, rows=manifest.get("rows"))


def write_timings(folder: Path, timings: dict[str, float]) -> None:
    """Where a run's or a source training's time went (seconds per phase, fslib.core.timing)."""
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


def discard_results(folder: Path, since: float | None = None) -> None:
    """An attempt that started at `since` (time.time()) failed: if it wrote a result set, that set belongs to a
    failed run, so the set it replaced comes back (or, where it replaced none, the set goes); a set written
    before the attempt is left as it is. Without `since`, the results in the folder are discarded."""
    try:
        manifest = read_manifest(folder)
    except ValueError:
        manifest = None
    if manifest is not None:
        written = manifest.get("written", 0)
    else:  # a results.csv written otherwise (by hand, by an older kit): its modification time
        results = folder / RESULTS_FILE
        written = results.lstat().st_mtime if os.path.lexists(results) else None  # a symlink: not followed
    if written is None or (since is not None and written < since - 0.01):
        return
    if manifest is None:
        (folder / RESULTS_FILE).unlink(missing_ok=True)
        return
    # write_run committed during this attempt: the `.previous` files are the set it replaced (maybe none)
    current = result_set(folder)
    previous = [path.name[1:-len(".previous")] for path in folder.glob(PREVIOUS.format("*"))]
    if MANIFEST_FILE not in previous:
        (folder / MANIFEST_FILE).unlink()  # first: what is left is no finished run of this attempt
    for name in sorted(previous, key=lambda name: name == MANIFEST_FILE):  # the manifest last
        os.replace(folder / PREVIOUS.format(name), folder / name)
    for name in current:
        if name not in previous and name != CONFIG_FILE:
            (folder / name).unlink(missing_ok=True)


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
    path = member(folder, FAILED_FILE)  # None: it resolves outside the folder
    try:
        record = json.loads(path.read_text()) if path else None
    except (OSError, ValueError):  # unreadable (cut, binary, a folder): no record, the run is retried
        return None
    return record if isinstance(record, dict) else None


def clear_failure(folder: Path) -> None:
    path = folder / FAILED_FILE
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)


# ---- status ----------------------------------------------------------------------------------------------------
def run_status(config: RunConfig, is_alive: Callable[[dict], bool]) -> str:
    """done | running | failed | pending | changed | corrupt. `is_alive(marker record)` tells whether the job
    that left a running marker still lives (fslib.batch.executors.job_alive asks the executor that wrote it)."""
    folder = run_dir(config)
    marker = running_record(folder / RUN_LOG)
    if marker is not None and is_alive(marker):
        return "running"
    if (folder / MANIFEST_FILE).exists() or ((folder / RESULTS_FILE).exists() and (folder / CONFIG_FILE).exists()):
        if corruption(folder) is not None:
            return "corrupt"
        try:
            stored = RunConfig.load(folder / CONFIG_FILE).config_hash
        except (TypeError, ValueError):  # written by another version of the kit
            stored = None
        return "done" if stored == config.config_hash else "changed"
    record = failure(folder)
    if record is not None and record.get("config_hash") == config.config_hash:
        return "failed"
    return "pending"


# ---- run folders of the layout before the config hash was part of them ---------------------------------------
LEGACY_LEAF = re.compile(r"seed\d+")  # runs/<task>/<label>/k<K>/seed<S>[/<targets>] held the files themselves
HASHED_LEAF = re.compile(r"-[0-9a-f]{12}$")  # the current layout's last part: <model>-<config hash>
TENSORBOARD = "tensorboard"


def legacy_run_folders(output_dir: Path | str) -> list[Path]:
    """Run folders under `output_dir/runs` in the layout before the config hash was part of the folder
    (`runs/<task>/<label>/k<K>/seed<S>[/<targets>]` holding results.csv): `fslib status` and `fslib batch` do not
    count them; `migrate_runs` moves them."""
    runs = Path(output_dir) / "runs"
    if not runs.is_dir():
        return []
    found = []
    for results in files_named(runs, RESULTS_FILE):
        folder = results.parent
        depth = len(folder.relative_to(runs).parts)
        if (depth == 4 and LEGACY_LEAF.fullmatch(folder.name)) or \
                (depth == 5 and LEGACY_LEAF.fullmatch(folder.parent.name) and not HASHED_LEAF.search(folder.name)):
            found.append(folder)
    return sorted(found)


def legacy_notice(output_dirs) -> list[str]:
    """Lines telling the user about run folders of the old layout (none where there are none)."""
    lines = []
    for output_dir in sorted({Path(path) for path in output_dirs}):
        folders = legacy_run_folders(output_dir)
        if folders:
            lines.append(f"note: {len(folders)} run folders under {output_dir / 'runs'} are in the layout before "
                         f"the config hash was part of a run's folder (e.g. {folders[0]}) and are not counted; "
                         f"`fslib migrate {output_dir}` moves them into the current layout (or delete them)")
    return lines


def migrate_runs(output_dir: Path | str) -> list[str]:
    """Move the finished runs of the old layout under `output_dir/runs` to their current folders (the folder
    their stored config.json gives, its hash computed with the paths it ran with); returns what it did, one line
    per folder. A folder whose config cannot be read, or whose current folder already holds results, stays."""
    output_dir = Path(output_dir)
    done = []
    for folder in legacy_run_folders(output_dir):
        try:
            config = RunConfig.load(folder / CONFIG_FILE)
            target = inside(output_dir / "runs", run_subpath(config), what=f"{folder / CONFIG_FILE}: its run folder")
        except (OSError, TypeError, ValueError) as error:
            done.append(f"kept {folder}: its config.json cannot be read ({error})")
            continue
        if (target / RESULTS_FILE).exists() or (target / MANIFEST_FILE).exists():
            done.append(f"kept {folder}: {target} already holds results")
            continue
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(folder.iterdir()):  # its files; a target set's run folder below it stays
            if entry.is_file() or entry.name == TENSORBOARD:
                os.replace(entry, target / entry.name)
        done.append(f"moved {folder} -> {target}")
    return done


# ---- source models ----------------------------------------------------------------------------------------------
def _stamp(path: Path) -> str:
    """How source-model keys counted a file before they counted its contents."""
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def source_model_identity(config: RunConfig) -> tuple:
    """What a source model is trained from, but the data files' stamps: task, model, seed, data source, the
    source-training stage's hyper-parameters and the data's caps. fslib.batch.cost counts source models by it
    (with the data folder and the UD treebank, which the stamps stand for here)."""
    c = config.resolved()
    model = portable_path(c.model, c.output_dir) if is_local_path(c.model) else c.model  # as the config hash has it
    cap_rule = (TRAIN_CAP_RULE,) if c.max_train_examples is not None else ()  # capped: a seeded sample since
    cap_rule += ("doc-stride-is-step",) if c.doc_stride_is_step else ()  # other TyDiQA windows (unset: keys kept)
    cap_rule += ("xtreme-tagging-inputs",) if c.xtreme_tagging_inputs else ()
    return (c.task, model, c.seed, c.source, json.dumps(stage_hyperparameters(c, adapting=False), sort_keys=True),
            c.max_length, c.doc_stride, c.max_query_length, c.selection, c.hold_out_source_dev, c.max_train_examples,
            c.max_eval_examples, *cap_rule)


def source_model_folder(config: RunConfig) -> Path:
    """Where the source-trained model of `config` lives: one folder per (task, model, seed, hyper-parameters,
    data), shared by zero-shot, ord-FS, ord-FS+dev and co-FT. The data and a local model count by their files'
    contents (fslib.store.content_keys: checksums, cached), so regenerating them trains anew and any copy keeps its
    source models; a local model's path counts relative to `output_dir`, so a moved checkout keeps them too. A
    source model trained before keys counted contents (its key counted sizes and modification times) is used
    while its files keep those."""
    files = _source_files(config.resolved())
    folder = _source_model_key_folder(config, [content_stamp(path) for path in files])
    if source_model_done(folder):
        return folder
    before = _source_model_key_folder(config, [_stamp(path) for path in files])
    return before if source_model_done(before) else folder


def _source_files(c: RunConfig) -> list[Path]:
    """The files a source model is trained from: the source language's data and a local model's files."""
    files = []
    if c.source == "xtreme":
        splits = ("train",) if c.task == "tydiqa" else ("train", "dev")
        files += [xtreme_path(c.data_dir, c.task, SOURCE_LANG, split) for split in splits]
    if c.source == "ud":
        files += list(ud_files(c.data_dir, SOURCE_LANG, c.treebank(SOURCE_LANG)))
    if c.source == "uner":
        files += list(uner_files(c.data_dir, SOURCE_LANG, c.treebank(SOURCE_LANG)))
    if Path(c.model).is_dir():
        files += [path for path in sorted(Path(c.model).iterdir()) if path.is_file()]
    return files


def _source_model_key_folder(config: RunConfig, stamps: list[str]) -> Path:
    c = config.resolved()
    key = stable_seed(*source_model_identity(c), *stamps)
    return Path(c.output_dir) / "source_models" / f"{c.task}-seed{c.seed}-{key:016x}"


def source_model_done(folder: Path) -> bool:
    return (folder / SOURCE_RECORD).exists()


def write_source_record(folder: Path, record: dict) -> None:
    """Written last into a source model's folder: it marks the model finished."""
    (folder / SOURCE_RECORD).write_text(json.dumps(record, indent=1))


def read_source_record(folder: Path) -> dict:
    return json.loads((folder / SOURCE_RECORD).read_text())
