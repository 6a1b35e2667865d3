"""Executors run a stage of a batch: a list of jobs (see fslib.worker.execute), each in a process of its own.

- `LocalExecutor(jobs=N)`: N worker subprocesses at a time on this machine; with GPUs, each job is pinned to one
  (CUDA_VISIBLE_DEVICES), round-robin. Stopping the batch stops the running jobs (their runs leave no rows), and
  a batch that dies takes its jobs with it (see LocalExecutor).
- `fslib.slurm.SlurmExecutor`: one Slurm job array per stage, through submitit.

Every executor follows the `Executor` protocol and is registered in `EXECUTORS` under the name `fslib batch
--executor` takes. Each job in flight leaves a running marker beside its log (fslib.ledger.mark_running, with
{"executor": name, ...}); `job_alive` asks that executor whether the job still lives, for `fslib status`.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from fslib.config import RunConfig
from fslib.ledger import Job, Outcome, clear_running, mark_running, run_status, source_model_done
from fslib.processes import HOST, identity, runs_here


class Executor(Protocol):
    name: str  # as `--executor` names it, and as its running markers say

    @classmethod
    def for_batch(cls, jobs: int, cluster: dict, output_dir: Path) -> Executor:
        """The executor for a batch: `--jobs`, the parameter files' `cluster:` section, the output folder."""

    def run_jobs(self, jobs: list[Job], description: str) -> list[Outcome]:
        """Run `jobs` (marking each running while it is in flight); return their outcomes in order."""

    @staticmethod
    def is_alive(marker: dict) -> bool:
        """Whether the job that left the running marker `marker` still lives (a killed batch leaves stale ones)."""


# name -> "module:Class", imported on use: a batch on a laptop never imports the cluster's libraries
EXECUTORS = {"local": "fslib.executors:LocalExecutor", "slurm": "fslib.slurm:SlurmExecutor"}
HEARTBEAT_SECONDS = 60  # a local job's running marker is rewritten this often while the job runs
STALE_SECONDS = 600  # a local marker from another host older than this is a dead batch's
STOP_GRACE_SECONDS = 20  # a stopped worker's time to stop its kernel and record the failure, then SIGKILL


def executor_class(name: str) -> type[Executor]:
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
    module, cls = EXECUTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_executor(name: str, jobs: int, cluster: dict, output_dir: Path) -> Executor:
    return executor_class(name).for_batch(jobs, cluster, output_dir)


def job_alive(marker: dict) -> bool:
    """Whether the job that left the running marker `marker` still lives, by the executor that wrote it."""
    if marker.get("executor") not in EXECUTORS:
        return False
    return executor_class(marker["executor"]).is_alive(marker)


def visible_gpus() -> list[str]:
    """GPU indices this process may use: CUDA_VISIBLE_DEVICES if set, else every GPU torch sees."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [gpu for gpu in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if gpu.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


class LocalExecutor:
    """Workers are children of the batch, in its process group (a Ctrl-C or a hang-up of the terminal reaches
    them too), and each asks to be sent SIGTERM when the batch dies, however it dies (fslib.worker); a worker that
    stops takes its kernel with it (fslib.worker, and the kernel's own watch on its parent). The running marker
    names the worker by host, pid and start time (fslib.processes.identity), and the batch rewrites it every
    HEARTBEAT_SECONDS: on another host only a recent heartbeat counts as alive."""

    name = "local"

    def __init__(self, jobs: int = 1, gpus: list[str] | None = None):
        if jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.gpus = visible_gpus() if gpus is None else gpus
        self._running: set[subprocess.Popen] = set()
        self._stopping = False
        self._lock = threading.Lock()

    @classmethod
    def for_batch(cls, jobs: int, cluster: dict, output_dir: Path) -> LocalExecutor:
        return cls(jobs)

    @staticmethod
    def is_alive(marker: dict) -> bool:
        if marker.get("host") == HOST:
            return runs_here(marker)  # pid and start time: a reused pid is another process
        # a batch on another host (shared storage): its pid means nothing here, its heartbeat does
        return time.time() - float(marker.get("heartbeat") or 0) < STALE_SECONDS

    def _run_one(self, job: Job, slots: queue.Queue) -> Outcome:
        slot = slots.get()
        try:
            taken = recheck(job)  # another batch may have finished or started it since the batch was planned
            if taken:
                return Outcome(job, True, skipped=taken)
            return self._start(job, slot)
        finally:
            slots.put(slot)

    def _start(self, job: Job, slot: str | None) -> Outcome:
        env = dict(os.environ, FSLIB_BATCH_PID=str(os.getpid()))  # the worker dies with this process
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot
        elif "OMP_NUM_THREADS" not in env:  # CPU jobs share the cores instead of each taking them all
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.jobs))
        job.log.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(job.log, "w") as log:
                # no new session: the worker stays in the batch's process group
                process = subprocess.Popen([sys.executable, "-m", "fslib.worker", json.dumps(job.payload())],
                                           stdout=log, stderr=subprocess.STDOUT, env=env)
                with self._lock:
                    self._running.add(process)
                    if self._stopping:  # started as kill_running was looking: stop it too
                        process.terminate()
                marker = {"executor": "local", **identity(process.pid), "log": str(job.log)}
                while True:
                    mark_running(job.log, {**marker, "heartbeat": time.time()})
                    try:
                        code = process.wait(timeout=HEARTBEAT_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        continue
                with self._lock:
                    self._running.discard(process)
        finally:
            clear_running(job.log)
        if code == 0:
            return Outcome(job, True)
        return Outcome(job, False, f"exit status {code}; log: {job.log}", job.log)

    def run_jobs(self, jobs: list[Job], description: str) -> list[Outcome]:
        """Run `jobs`, at most `self.jobs` at a time; returns their outcomes in order."""
        if not jobs:
            return []
        slots: queue.Queue = queue.Queue()
        for i in range(self.jobs):
            slots.put(self.gpus[i % len(self.gpus)] if self.gpus else None)
        outcomes: dict[int, Outcome] = {}
        with tqdm(total=len(jobs), desc=description, unit="job") as bar, ThreadPoolExecutor(self.jobs) as pool:
            futures = {pool.submit(self._run_one, job, slots): i for i, job in enumerate(jobs)}
            try:
                for future in as_completed(futures):
                    outcome = future.result()
                    outcomes[futures[future]] = outcome
                    bar.update()
                    if outcome.skipped:
                        bar.write(f"skipped: {outcome.job.name}: {outcome.skipped} in another batch")
                    elif not outcome.ok:
                        bar.write(f"failed: {outcome.job.name}: {outcome.error}")
            except BaseException:  # Ctrl-C, SIGTERM, SIGHUP: start nothing more, stop what runs, then leave
                pool.shutdown(wait=False, cancel_futures=True)
                self.kill_running()
                raise
        return [outcomes[i] for i in range(len(jobs))]

    def kill_running(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to every worker (each stops its kernel and records the failure), SIGKILL to those still there
        after `grace` seconds; returns once all are gone and reaped."""
        with self._lock:
            self._stopping = True
            running = list(self._running)
        for process in running:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def recheck(job: Job) -> str | None:
    """Just before a job starts: "done" or "running" if its run (or source model) was finished or taken up by
    another batch since this one was planned; None if it is still to do."""
    if job.kind == "source":
        return "done" if source_model_done(job.folder) else None
    status = run_status(RunConfig(**job.config), job_alive)
    return status if status in ("done", "running") else None
