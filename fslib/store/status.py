"""A run's status, read from its folder alone: done, running, failed, pending, changed (results of another
configuration: to run again) or corrupt (result files that do not match their manifest, or cannot be read: to run
again; fslib.store.run_files.corruption says which file and how)."""

from __future__ import annotations

from collections.abc import Callable

from fslib.store.config import RunConfig, run_dir
from fslib.store.failures import failure
from fslib.store.jobs import RUN_LOG, running_record
from fslib.store.results import CONFIG_FILE, MANIFEST_FILE, RESULTS_FILE
from fslib.store.run_files import corruption

STATUSES = ("done", "running", "pending", "failed", "changed", "corrupt")


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
