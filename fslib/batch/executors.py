"""Executors run a stage of a batch: a list of jobs (see fslib.batch.worker.execute), each in a process of its own.

- `LocalExecutor(jobs=N)`: N worker subprocesses on this machine, each running one job after another (its runs'
  notebooks in one kernel: fslib.batch.worker.serve); with GPUs, each worker is pinned to one (CUDA_VISIBLE_DEVICES),
  round-robin. Stopping the batch stops the running jobs (their runs leave no rows), and a batch that dies takes
  its jobs with it (see LocalExecutor).
- `fslib.batch.slurm.SlurmExecutor`: one Slurm job array per stage, through submitit.

Every executor is an `Executor` subclass registered in `EXECUTORS` under the name `fslib batch --executor` takes.
The base owns what every executor does alike: the recheck of a job just before it starts (another batch may have
done or taken it), the running marker each job in flight leaves beside its log (fslib.store.jobs.mark_running,
with {"executor": name, ...}), the progress bar and the lines it writes for skipped and failed jobs, and the
check of the parameter files' `cluster:` section against the keys the executor takes. A subclass says only how
its jobs are launched and waited for (`launch`), how it is made for a batch (`for_batch`) and whether a job that
left a marker still lives (`is_alive`, asked by `fslib status` through `job_alive`).
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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

from fslib.batch.processes import HOST, identity, runs_here
from fslib.store.config import RunConfig
from fslib.store.failures import failure, record_failure
from fslib.store.jobs import Job, Outcome, clear_running, mark_running
from fslib.store.source_models import source_model_done
from fslib.store.status import run_status

Report = Callable[[int, Outcome], None]  # (the job's index in run_jobs' list, its outcome)


class Executor:
    """The shared part of every executor (see the module docstring); subclasses implement `for_batch`, `is_alive`
    and `launch`."""

    name: str = ""  # as `--executor` names it, and as its running markers say
    cluster_keys: tuple[str, ...] = ()  # the keys of the parameter files' `cluster:` section it takes

    @classmethod
    def check_cluster(cls, cluster: dict, where: str = "cluster") -> None:
        """A `cluster:` section with a key this executor does not take is an error naming the valid keys."""
        unknown = sorted(set(cluster) - set(cls.cluster_keys))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: "
                             f"{', '.join(cls.cluster_keys) or f'none (executor {cls.name!r} takes no settings)'}")

    @classmethod
    def for_batch(cls, jobs: int, cluster: dict, output_dir: Path) -> Executor:
        """The executor for a batch: `--jobs`, the parameter files' `cluster:` section, the output folder."""
        raise NotImplementedError

    @staticmethod
    def is_alive(marker: dict) -> bool:
        """Whether the job that left the running marker `marker` still lives (a killed batch leaves stale ones)."""
        raise NotImplementedError

    def launch(self, jobs: list[tuple[int, Job]], description: str, report: Report) -> None:
        """Run `jobs` ((index, job) pairs; `description`: the stage, as the progress bar names it), calling
        `report(index, outcome)` once for each, from this thread. A job is to be rechecked just before it starts
        (`taken`) and marked running while it is in flight (`running`, or `mark_running` and `clear_running`)."""
        raise NotImplementedError

    def run_jobs(self, jobs: list[Job], description: str) -> list[Outcome]:
        """Run `jobs` under a progress bar; returns their outcomes in order."""
        if not jobs:
            return []
        outcomes: dict[int, Outcome] = {}
        with tqdm(total=len(jobs), desc=description, unit="job") as bar:
            def report(index: int, outcome: Outcome) -> None:
                outcomes[index] = outcome
                bar.update()
                if outcome.skipped:
                    bar.write(f"skipped: {outcome.job.name}: {outcome.skipped} in another batch")
                elif not outcome.ok:
                    bar.write(f"failed: {outcome.job.name}: {outcome.error}")

            self.launch(list(enumerate(jobs)), description, report)
        unreported = [job.name for i, job in enumerate(jobs) if i not in outcomes]
        if unreported:
            raise RuntimeError(f"executor {self.name!r} reported no outcome for {', '.join(unreported)}")
        return [outcomes[i] for i in range(len(jobs))]

    @staticmethod
    def taken(job: Job) -> Outcome | None:
        """A skipped outcome if another batch finished or took up `job` since this one was planned, else None."""
        status = recheck(job)
        return Outcome(job, True, skipped=status) if status else None

    def mark_running(self, job: Job, **details) -> None:
        mark_running(job.log, {"executor": self.name, **details})

    @staticmethod
    def clear_running(job: Job) -> None:
        clear_running(job.log)

    @contextmanager
    def running(self, job: Job, **details) -> Iterator[None]:
        """`job` marked running (its log's folder made) for the time of the block."""
        job.log.parent.mkdir(parents=True, exist_ok=True)
        self.mark_running(job, **details)
        try:
            yield
        finally:
            self.clear_running(job)


# name -> "module:Class", imported on use: a batch on a laptop never imports the cluster's libraries
EXECUTORS = {"local": "fslib.batch.executors:LocalExecutor", "slurm": "fslib.batch.slurm:SlurmExecutor"}
DEFAULT_CLUSTER_EXECUTOR = "slurm"  # the executor a `cluster:` section without `executor:` configures
HEARTBEAT_SECONDS = 60  # a local job's running marker is rewritten this often while the job runs
STALE_SECONDS = 600  # a local marker from another host older than this is a dead batch's
STOP_GRACE_SECONDS = 20  # a stopped worker's time to stop its kernel and record the failure, then SIGKILL


def executor_class(name: str) -> type[Executor]:
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
    module, cls = EXECUTORS[name].split(":")
    found = getattr(importlib.import_module(module), cls)
    if not (isinstance(found, type) and issubclass(found, Executor)):
        raise TypeError(f"executor {name!r}: {EXECUTORS[name]} is not a fslib.batch.executors.Executor subclass")
    return found


def cluster_settings(cluster: dict, name: str) -> dict:
    """The settings of a parameter file's `cluster:` section for executor `name`: the section without its
    `executor` key where the section is for `name` (`executor:` absent: for Slurm), else none."""
    if cluster.get("executor", DEFAULT_CLUSTER_EXECUTOR) != name:
        return {}
    return {key: value for key, value in cluster.items() if key != "executor"}


def make_executor(name: str, jobs: int, cluster: dict, output_dir: Path) -> Executor:
    """Executor `name` for a batch, with its settings of the `cluster:` section."""
    return executor_class(name).for_batch(jobs, cluster_settings(cluster, name), output_dir)


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


class LocalExecutor(Executor):
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
            return self.taken(job) or self._start(job, slot)
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
        marker = {**identity(worker.pid), "log": str(job.log)}
        try:
            self.mark_running(job, **marker, heartbeat=time.time())
            try:
                worker.stdin.write(json.dumps(job.payload()) + "\n")
                worker.stdin.flush()
            except BrokenPipeError:  # the worker is gone: its exit status says why
                pass
            while not select.select([worker.stdout], [], [], HEARTBEAT_SECONDS)[0]:
                self.mark_running(job, **marker, heartbeat=time.time())
            reply = worker.stdout.readline()
        finally:
            self.clear_running(job)
        if reply:
            if json.loads(reply)["ok"]:
                return Outcome(job, True)
            return Outcome(job, False, f"failed; log: {job.log}", job.log)
        code = worker.wait()  # no reply: the worker died during the job
        outcome = Outcome(job, False, f"worker exit status {code}; log: {job.log}", job.log)
        if job.kind == "run" and failure(job.folder) is None:  # now, not when the batch collects the outcomes:
            record_failure(job.folder, RunConfig(**job.config), outcome.error, log=job.log)  # it may be stopped first
        return outcome

    def launch(self, jobs: list[tuple[int, Job]], description: str, report: Report) -> None:
        """Run `jobs`, at most `self.jobs` at a time."""
        slots: queue.Queue = queue.Queue()
        for slot in range(self.jobs):
            slots.put(slot)
        with ThreadPoolExecutor(self.jobs) as pool:
            futures = {pool.submit(self._run_one, job, slots): i for i, job in jobs}
            try:
                for future in as_completed(futures):
                    report(futures[future], future.result())
            except BaseException:  # Ctrl-C, SIGTERM, SIGHUP: start nothing more, stop what runs, then leave
                pool.shutdown(wait=False, cancel_futures=True)
                self.kill_running()
                raise
            # before the pool's threads end: a worker's parent-death signal comes when the thread that started it
            # ends (PR_SET_PDEATHSIG), not only the batch
            self.close_workers()

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
