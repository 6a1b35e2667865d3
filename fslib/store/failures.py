"""Why a run's last attempt failed: `FAILED.json` in its run folder (the error, where to look, the config hash it
ran with), written atomically; an unreadable record counts as none, so that the run is retried."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from fslib.core.containment import member
from fslib.core.files import write_atomic
from fslib.store.config import RunConfig

FAILED_FILE = "FAILED.json"


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
