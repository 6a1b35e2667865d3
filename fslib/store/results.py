"""Result rows: one tidy row per measurement, one CSV file per run, written atomically.

Columns: task, method, model, k, seed, lang, split, metric, value (0-100), epoch, step, run_id, config_hash.
`split` is "test" for a run's final scores, "dev" for per-epoch dev curves (source and target dev sets) and
"test-curve" for per-epoch test scores (only with `test_curves`). A run's folder holds `results.csv` (its
rows), `config.json` (its RunConfig), possibly `surgery.csv` and `gradient_similarity.csv`, and `manifest.json`
(each file's size and checksum and the row count); fslib.store.run_files writes them as one set, the manifest last, so a
folder whose files match its manifest is a finished run and a failed or interrupted run never leaves rows that
look valid. `load_results` checks every file against its manifest as it reads it, and reads result files from
elsewhere (another tool, the paper) that have only the core columns. Each row also gets its run's provenance
(fslib.store.provenance.PROVENANCE_COLUMNS, from `provenance.json`; NA for runs without one).
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fslib.core.containment import files_named, member
from fslib.core.files import fingerprint
from fslib.store.provenance import PROVENANCE_COLUMNS, read_provenance
from fslib.store.provenance import columns as provenance_columns

CORE_COLUMNS = ["task", "method", "k", "seed", "lang", "split", "metric", "value"]
COLUMNS = ["task", "method", "model", "k", "seed", "lang", "split", "metric", "value", "epoch", "step", "run_id",
           "config_hash"]
RESULTS_FILE = "results.csv"
CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
UNKNOWN_MODEL = "unknown"  # the model of rows whose file does not say (and has no config.json beside it)


@dataclass
class Row:
    lang: str
    split: str
    metric: str
    value: float
    epoch: int | None = None
    step: int | None = None


def rows_frame(rows: list[Row], *, task: str, method: str, model: str, k: int, seed: int, run_id: str,
               config_hash: str) -> pd.DataFrame:
    frame = pd.DataFrame([vars(row) for row in rows], columns=["lang", "split", "metric", "value", "epoch", "step"])
    for column, value in {"task": task, "method": method, "model": model, "k": k, "seed": seed, "run_id": run_id,
                          "config_hash": config_hash}.items():
        frame[column] = value
    frame[["epoch", "step"]] = frame[["epoch", "step"]].astype("Int64")
    return frame[COLUMNS]


def results_problem(path: Path, rows: int | None = None) -> str | None:
    """What is wrong with a results file, naming it; None when it is whole: not empty, text, its last line
    complete, every row with as many fields as the header, at least one row (and `rows` of them, where known)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        return f"{path}: cannot be read ({error.strerror or error})"
    if not data.strip():
        return f"{path}: empty"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return f"{path}: not a CSV file (binary data)"
    if not text.endswith("\n"):
        return f"{path}: truncated (its last line is incomplete)"
    lines = list(csv.reader(io.StringIO(text)))
    header, body = lines[0], [line for line in lines[1:] if line]
    short = next((number for number, line in enumerate(body, start=2) if len(line) != len(header)), None)
    if short is not None:
        return f"{path}: line {short} has {len(body[short - 2])} fields, the header {len(header)} (cut or garbled)"
    if not body:
        return f"{path}: no rows"
    if rows is not None and len(body) != rows:
        return f"{path}: {len(body)} rows, {rows} when written (truncated or changed since)"
    return None


def load_results(path: Path | str, *, skip_unreadable: bool = False) -> pd.DataFrame:
    """Every run's rows under `path` (a run folder, a folder of runs, or one results file) as one DataFrame.

    Each file is checked as it is read: against the manifest beside it where there is one (row count, checksum),
    otherwise for a whole CSV. Files need only the core columns (task, method, k, seed, lang, split, metric,
    value), so rows from another tool or the paper compare with the kit's; the others are filled in (`model` from
    the config.json beside the file where there is one, else "unknown"; run_id from the task, method, k and seed).
    A file that cannot be read is an error naming it, every such file at once; `skip_unreadable` leaves them out
    with a warning instead. Files in hidden folders or with hidden names (the kit's temporary and kept files) are
    not results."""
    path = Path(path)
    if path.is_file():
        files = [path]
    else:
        files = sorted(files_named(path, RESULTS_FILE))  # hidden and symlinked folders left out
    frames, problems = [], []
    for file in files:
        try:
            frames.append(_read_results(file))
        except ValueError as error:
            problems.append(str(error))
    if problems:
        message = "unreadable result files (rerun their runs with `fslib batch`, or remove them):\n  " + \
            "\n  ".join(problems)
        if not skip_unreadable:
            raise ValueError(message)
        warnings.warn(message, stacklevel=2)
    if not frames:
        frame = pd.DataFrame(columns=COLUMNS)
    else:
        frame = pd.concat(frames, ignore_index=True)
    for column in PROVENANCE_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.NA
    frame[["epoch", "step"]] = frame[["epoch", "step"]].astype("Int64")
    return frame


def read_manifest(folder: Path) -> dict | None:
    """The manifest of the finished run in `folder`; None where there is none; ValueError where it is unreadable."""
    path = folder / MANIFEST_FILE
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        if member(folder, MANIFEST_FILE) is None:
            raise ValueError(f"resolves to {path.resolve()}, outside {folder}")
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict) or \
                not all(isinstance(entry, dict) for entry in manifest["files"].values()):
            raise ValueError("not a manifest")
        return manifest
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable manifest ({error})") from None


def _read_results(file: Path) -> pd.DataFrame:
    """One results file, checked and completed to COLUMNS; ValueError naming the file where it cannot be."""
    rows = None
    manifest_path = file.parent / MANIFEST_FILE
    manifest = read_manifest(file.parent) if file.name == RESULTS_FILE else None
    if manifest is not None:
        recorded, rows = manifest["files"].get(RESULTS_FILE), manifest.get("rows")
        if recorded is None or rows is None:
            raise ValueError(f"{manifest_path}: unreadable manifest (no {RESULTS_FILE} entry or row count)")
        if fingerprint(file) != {"bytes": recorded.get("bytes"), "sha256": recorded.get("sha256")}:
            raise ValueError(f"{file}: does not match {manifest_path} (size or checksum differs: truncated or "
                             f"changed since the run wrote it)")
    problem = results_problem(file, rows)
    if problem:
        raise ValueError(problem)
    try:
        frame = pd.read_csv(file, dtype={"lang": str, "run_id": str, "config_hash": str, "model": str})
    except (ValueError, pd.errors.ParserError) as error:
        raise ValueError(f"{file}: not a results table ({error})") from None
    missing = [column for column in CORE_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{file}: no column(s) {', '.join(missing)}; a results file needs "
                         f"{', '.join(CORE_COLUMNS)}")
    labels = [column for column in CORE_COLUMNS if column != "value"]  # a value may be NaN (an undefined score)
    empty = frame[labels].isna().any(axis=1)
    if empty.any():
        raise ValueError(f"{file}: line {int(empty.idxmax()) + 2} lacks a value in a core column "
                         f"({', '.join(labels)})")
    values = pd.to_numeric(frame["value"], errors="coerce")
    wrong = values.isna() & frame["value"].notna()
    if wrong.any():
        raise ValueError(f"{file}: line {int(wrong.idxmax()) + 2}: value {frame['value'][wrong].iloc[0]!r} is not "
                         f"a number")
    frame["value"] = values
    if "model" not in frame.columns:
        frame["model"] = pd.NA
    if frame["model"].isna().any():  # rows written before they named their model: their config.json says
        frame["model"] = frame["model"].fillna(_model_beside(file))
    if "run_id" not in frame.columns:
        frame["run_id"] = (frame["task"].astype(str) + "-" + frame["method"].astype(str) + "-k" +
                           frame["k"].astype(str) + "-seed" + frame["seed"].astype(str))
    for column in ("epoch", "step", "config_hash"):
        if column not in frame.columns:
            frame[column] = pd.NA
    frame["lang"] = frame["lang"].astype(str)
    recorded = read_provenance(file.parent) if file.name == RESULTS_FILE else None
    for column, value in provenance_columns(recorded).items():
        if column not in frame.columns:
            frame[column] = value
    return frame[COLUMNS + [column for column in frame.columns if column not in COLUMNS]]


def _model_beside(file: Path) -> str:
    """The model of a results file written before rows had the column: its run's config.json says."""
    config = member(file.parent, CONFIG_FILE)  # None: it resolves outside the run's folder
    if config is None:
        return UNKNOWN_MODEL
    try:
        model = json.loads(config.read_text())["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return UNKNOWN_MODEL
    from fslib.store.config import model_name

    return model_name(str(model))
