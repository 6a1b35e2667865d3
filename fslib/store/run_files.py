"""A finished run's files, written as one set: `write_run` writes every file to a temporary name first, then
renames them into place, the manifest last; the set it replaces is kept beside it (`.<name>.previous`) until the
next one, so that an attempt that fails after writing its set can put the old one back (`discard_results`). Old
results are never deleted by a run that fails. `corruption` says which file of a set no longer matches its
manifest; `read_predictions` reads the kept test predictions."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from fslib.core.containment import member
from fslib.core.files import fingerprint, temporary_beside
from fslib.store.config import RunConfig
from fslib.store.provenance import PROVENANCE_FILE
from fslib.store.results import CONFIG_FILE, MANIFEST_FILE, RESULTS_FILE, read_manifest, results_problem

TIMINGS_FILE = "timings.json"  # seconds per phase of a run or a source training (fslib.core.timing)
PREDICTIONS_FILE = "predictions.jsonl.gz"
PREVIOUS = ".{}.previous"  # a file of the set the last write replaced, kept until the next write


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
