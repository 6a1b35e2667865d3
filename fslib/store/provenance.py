"""What produced a run: the kit (version, git commit, whether the tree had uncommitted changes), the libraries,
the device, the data files (SHA-256 of each) and the model (its hub revision or the SHA-256 of its files).

A run writes it as `provenance.json` beside its results (listed in its manifest); `load_results` turns it into
columns (PROVENANCE_COLUMNS), and `signature` sums up a table's rows in one line that the reports print under
every table. None of it enters the config hash: a run computes the same thing on another machine or commit; the
record says where it did, so that runs of different engine versions are told apart (`engine_note`) rather than
averaged unnoticed.

Light on purpose (no torch, transformers or datasets: the store layer is read by planning tools); the engine adds
the device and the model's hub revision (fslib.engine.provenance). Assumes the kit runs from a git checkout when it
can say its commit; otherwise the commit is "unknown".
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

from fslib import __version__
from fslib.core.containment import member
from fslib.core.languages import SOURCE_LANG
from fslib.formats.errors import DataError
from fslib.formats.ud import ud_files
from fslib.formats.uner import uner_files
from fslib.formats.xtreme import xtreme_path
from fslib.store.content_keys import checksum

PROVENANCE_FILE = "provenance.json"
LIBRARIES = ("torch", "transformers", "datasets")
# The columns load_results adds (NA for runs written before provenance, or files from elsewhere).
PROVENANCE_COLUMNS = ["kit_version", "kit_commit", "kit_dirty", "python", "torch", "transformers", "datasets",
                      "device", "data_sha256", "model_revision"]
UNKNOWN = "unknown"
KIT_ROOT = Path(__file__).resolve().parents[2]


def kit_identity(root: Path = KIT_ROOT) -> dict:
    """The kit's version, its git commit and whether tracked files differ from it (`dirty`; None outside git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10,
                                check=True).stdout.strip()
        changes = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return {"version": __version__, "commit": commit, "dirty": bool(changes)}
    except (OSError, subprocess.SubprocessError):
        return {"version": __version__, "commit": UNKNOWN, "dirty": None}


def library_versions() -> dict[str, str]:
    """Python's and the installed torch, transformers and datasets versions (read from their metadata: nothing
    is imported)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = UNKNOWN
    return versions


def data_files(config) -> list[Path]:
    """The data files a run of `config` (a resolved RunConfig) reads: every split file of every evaluated
    language (XTREME layout), or the chosen treebank's files (UD, UNER); none for the hub source (its revision is
    recorded instead)."""
    files: list[Path] = []
    for lang in config.languages or [SOURCE_LANG]:
        if config.source == "ud":
            files += ud_files(config.data_dir, lang, config.treebank(lang))
        elif config.source == "uner":
            files += uner_files(config.data_dir, lang, config.treebank(lang))
        elif config.source == "xtreme":
            for split in ("train", "dev") if config.task == "tydiqa" else ("train", "dev", "test"):  # TyDiQA: 2 files
                try:
                    files.append(xtreme_path(config.data_dir, config.task, lang, split))
                except DataError:  # a split this task has not in this language (XNLI targets' train, ...)
                    continue
    return list(dict.fromkeys(path.resolve() for path in files))


def data_checksums(config) -> dict[str, str]:
    """SHA-256 of every file of `data_files`, by its path relative to the data folder (cached: content_keys)."""
    root = Path(config.data_dir).resolve() if config.data_dir else None
    named = {}
    for path in data_files(config):
        name = path.relative_to(root).as_posix() if root and path.is_relative_to(root) else path.as_posix()
        named[name] = checksum(path)
    return named


def model_files_checksums(model: str) -> dict[str, str] | None:
    """SHA-256 of every file of a local model folder (None for a hub id)."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return None
    return {path.name: checksum(path) for path in sorted(folder.iterdir()) if path.is_file()}


def digest(checksums: dict[str, str]) -> str:
    """One short SHA-256 over named checksums (sorted), to compare runs in a column."""
    text = "\n".join(f"{name}:{value}" for name, value in sorted(checksums.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def base_record(config) -> dict:
    """Everything but the device and the model's hub revision (the engine's part): kit, libraries, data."""
    data = {"source": config.source}
    if config.source == "hub":
        data["revision"] = UNKNOWN  # the engine fills in the revisions of the hub datasets it loaded
    else:
        data["files"] = data_checksums(config)
        data["sha256"] = digest(data["files"])
    model_files = model_files_checksums(config.model)
    model = {"name": config.model}
    if model_files is not None:
        model.update(files=model_files, sha256=digest(model_files))
    return {"kit": kit_identity(), "libraries": library_versions(), "platform": platform.platform(),
            "argv": sys.argv[:1], "data": data, "model": model}


def columns(record: dict | None) -> dict:
    """The PROVENANCE_COLUMNS values of one run's record (NA where it does not say)."""
    if not record:
        return dict.fromkeys(PROVENANCE_COLUMNS, pd.NA)
    kit, libraries = record.get("kit", {}), record.get("libraries", {})
    data, model, device = record.get("data", {}), record.get("model", {}), record.get("device", {})
    return {"kit_version": kit.get("version", pd.NA), "kit_commit": kit.get("commit", pd.NA),
            "kit_dirty": kit.get("dirty", pd.NA), "python": libraries.get("python", pd.NA),
            "torch": libraries.get("torch", pd.NA), "transformers": libraries.get("transformers", pd.NA),
            "datasets": libraries.get("datasets", pd.NA), "device": device.get("name", pd.NA),
            "data_sha256": data.get("sha256") or data.get("revision", pd.NA),
            "model_revision": model.get("revision") or model.get("sha256", pd.NA)}


def read_provenance(folder: Path) -> dict | None:
    """The provenance record of the run in `folder`; None where there is none or it cannot be read."""
    path = member(folder, PROVENANCE_FILE)  # None: it resolves outside the folder
    try:
        record = json.loads(path.read_text()) if path and path.is_file() else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def engine_version(rows: pd.DataFrame) -> pd.Series:
    """Per row, the engine that produced it: `<kit version>@<commit[:10]>` (`+dirty` with uncommitted changes),
    "unrecorded" for runs without provenance."""
    if "kit_commit" not in rows.columns:
        return pd.Series("unrecorded", index=rows.index)
    commit = rows["kit_commit"].astype("string").str.slice(0, 10)
    dirty = rows["kit_dirty"].map(lambda value: "+dirty" if str(value) == "True" else "")
    version = rows["kit_version"].astype("string") + "@" + commit + dirty
    return version.fillna("unrecorded").astype(str)


def _values(rows: pd.DataFrame, column: str) -> list[str]:
    if column not in rows.columns:
        return []
    return sorted({str(value) for value in rows[column].dropna().unique()})


def _join(values: list[str], limit: int = 3) -> str:
    if not values:
        return "unrecorded"
    shown = ", ".join(values[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "")


def signature(rows: pd.DataFrame) -> str:
    """One line saying what produced `rows` (load_results' frame): how many runs, with which kit, libraries,
    devices, data and model; several values where the runs differ."""
    if rows.empty:
        return "signature: no rows"
    runs = rows["run_id"].nunique() if "run_id" in rows.columns else len(rows)
    engines = sorted(set(engine_version(rows)))
    libraries = "; ".join(f"{name} {_join(_values(rows, name))}" for name in ("torch", "transformers", "datasets"))
    models = _join([f"{model}@{str(revision)[:12]}" for model, revision in
                    rows[["model", "model_revision"]].astype(str).drop_duplicates().itertuples(index=False)]
                   if "model_revision" in rows.columns else _values(rows, "model"))
    return (f"signature: {runs} runs · fslib {_join(engines)} · {libraries} · device {_join(_values(rows, 'device'))}"
            f" · data {_join(_values(rows, 'data_sha256'))} · model {models}")


def engine_note(rows: pd.DataFrame) -> str | None:
    """A warning when `rows` come from more than one engine version (or some runs did not record theirs)."""
    if rows.empty:
        return None
    versions = engine_version(rows)
    runs = pd.DataFrame({"run": rows["run_id"] if "run_id" in rows.columns else rows.index, "engine": versions})
    counts = runs.drop_duplicates().groupby("engine")["run"].nunique()
    if len(counts) <= 1:
        return None
    listed = ", ".join(f"{engine} ({count} runs)" for engine, count in counts.items())
    return (f"these results mix {len(counts)} engine versions: {listed}; runs from before and after an engine fix "
            "are averaged together in the tables (rerun the older runs, or filter on the kit_commit column)")
