"""A batch's jobs and their outcomes, and the running marker a job in flight leaves beside its log
(`worker.running.json` beside `worker.log`): which executor runs it and how to find it. `run_status` reads it;
the executor that wrote it says whether the job still lives (fslib.batch.executors.job_alive)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fslib.core.containment import member
from fslib.core.files import write_atomic

RUN_LOG = "worker.log"  # a batch job's output, in its run folder


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
