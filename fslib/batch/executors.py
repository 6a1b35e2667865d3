"""Executors run a stage of a batch: a list of jobs (see fslib.batch.worker.execute), each in a process of its own.

- `LocalExecutor(jobs=N)`: N worker subprocesses on this machine, each running one job after another (its runs'
  notebooks in one kernel: fslib.batch.worker.serve); with GPUs, each worker is pinned to one (CUDA_VISIBLE_DEVICES),
  round-robin. Stopping the batch stops the running jobs (their runs leave no rows), and a batch that dies takes
  its jobs with it (see LocalExecutor).
- `fslib.batch.slurm.SlurmExecutor`: one Slurm job array per stage, through submitit.

Every executor follows the `Executor` protocol and is registered in `EXECUTORS` under the name `fslib batch
--executor` takes. Each job in flight leaves a running marker beside its log (fslib.store.ledger.mark_running, with
{"executor": name, ...}); `job_alive` asks that executor whether the job still lives, for `fslib status`.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from fslib.batch.processes import HOST, identity, runs_here
from fslib.store.config import RunConfig
from fslib.store.ledger import (
    Job,
    Outcome,
    clear_running,
    failure,
    mark_running,
    record_failure,
    run_status,
    source_model_done,
)


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
EXECUTORS = {"local": "fslib.batch.executors:LocalExecutor", "slurm": "fslib.batch.slurm:SlurmExecutor"}
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
    """One worker per slot (`jobs` of them), started on its slot's first job and kept for the next ones of the same
    `run_jobs` call (`python -m fslib.batch.worker --serve`: a job in, one reply out, through its stdin and stdout); a
    worker that dies is replaced for the next job. Workers are children of the batch, in its process group (a
    Ctrl-C or a hang-up of the terminal reaches them too), and each asks to be sent SIGTERM when the batch dies,
    however it dies (fslib.batch.worker); a worker that stops takes its kernel with it (fslib.batch.worker, and
    the kernel's own watch on its parent). A job's running marker names its worker by host, pid and start time
    (fslib.batch.processes.identity), and the batch rewrites it every HEARTBEAT_SECONDS: on another host only a recent
    heartbeat counts as alive."""

    name = "local"

    def __init__(self, jobs: int = 1, gpus: list[str] | None = None):
        if jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.gpus = visible_gpus() if gpus is None else gpus
        self._workers: dict[int, subprocess.Popen] = {}  # slot -> its live worker
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

    def _worker(self, slot: int) -> subprocess.Popen:
        """The slot's worker, started if it has none (or it died)."""
        with self._lock:
            worker = self._workers.get(slot)
            if worker is not None and worker.poll() is None:
                return worker
            env = dict(os.environ, FSLIB_BATCH_PID=str(os.getpid()))  # the worker dies with this process
            if self.gpus:
                env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
            elif "OMP_NUM_THREADS" not in env:  # CPU jobs share the cores instead of each taking them all
                env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.jobs))
            # no new session: the worker stays in the batch's process group
            worker = subprocess.Popen([sys.executable, "-m", "fslib.batch.worker", "--serve"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env, text=True)
            self._workers[slot] = worker
            if self._stopping:  # started as kill_running was looking: stop it too
                worker.terminate()
            return worker

    def _start(self, job: Job, slot: int) -> Outcome:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        worker = self._worker(slot)
        marker = {"executor": "local", **identity(worker.pid), "log": str(job.log)}
        try:
            mark_running(job.log, {**marker, "heartbeat": time.time()})
            try:
                worker.stdin.write(json.dumps(job.payload()) + "\n")
                worker.stdin.flush()
            except BrokenPipeError:  # the worker is gone: its exit status says why
                pass
            while not select.select([worker.stdout], [], [], HEARTBEAT_SECONDS)[0]:
                mark_running(job.log, {**marker, "heartbeat": time.time()})
            reply = worker.stdout.readline()
        finally:
            clear_running(job.log)
        if reply:
            if json.loads(reply)["ok"]:
                return Outcome(job, True)
            return Outcome(job, False, f"failed; log: {job.log}", job.log)
        code = worker.wait()  # no reply: the worker died during the job
        outcome = Outcome(job, False, f"worker exit status {code}; log: {job.log}", job.log)
        if job.kind == "run" and failure(job.folder) is None:  # now, not when the batch collects the outcomes:
            record_failure(job.folder, RunConfig(**job.config), outcome.error, log=job.log)  # it may be stopped first
        return outcome

    def run_jobs(self, jobs: list[Job], description: str) -> list[Outcome]:
        """Run `jobs`, at most `self.jobs` at a time; returns their outcomes in order."""
        if not jobs:
            return []
        slots: queue.Queue = queue.Queue()
        for slot in range(self.jobs):
            slots.put(slot)
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
            # before the pool's threads end: a worker's parent-death signal comes when the thread that started it
            # ends (PR_SET_PDEATHSIG), not only the batch
            self.close_workers()
        return [outcomes[i] for i in range(len(jobs))]

    def close_workers(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """End the idle workers: their stdin closes, they shut their kernels down and leave (killed after `grace`
        seconds)."""
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.stdin.close()
        _reap(workers, grace)

    def kill_running(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to every worker (each stops its kernel and records its job's failure), SIGKILL to those still
        there after `grace` seconds; returns once all are gone and reaped."""
        with self._lock:
            self._stopping = True
            workers = list(self._workers.values())
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        _reap(workers, grace)


def _reap(workers: list[subprocess.Popen], grace: float) -> None:
    deadline = time.monotonic() + grace
    for worker in workers:
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def recheck(job: Job) -> str | None:
    """Just before a job starts: "done" or "running" if its run (or source model) was finished or taken up by
    another batch since this one was planned; None if it is still to do."""
    if job.kind == "source":
        return "done" if source_model_done(job.folder) else None
    status = run_status(RunConfig(**job.config), job_alive)
    return status if status in ("done", "running") else None
