"""The Slurm executor: each stage of a batch (source models, then runs) is one Slurm job array submitted through
submitit, and `fslib batch` waits for it before submitting the next stage (staged submission: no job sits in
the queue waiting on another, and a failed source model is known before its runs are submitted).

Settings come from the `cluster:` section of the parameter file:

    cluster:
      partition: gpu          # --partition
      gpus_per_node: 1        # --gpus-per-node (a run uses one GPU)
      cpus_per_task: 8
      mem_gb: 64
      timeout_min: 720        # the run is killed (and reported failed) past this
      array_parallelism: 32   # at most this many jobs of an array at once
      account: null           # --account
      qos: null               # --qos
      constraint: null        # --constraint
      setup: []               # shell lines run before each job (module load ..., source .venv/bin/activate)
      additional_parameters: {}  # any other sbatch option, e.g. {exclude: node17}
      log_dir: null           # default: <output_dir>/slurm-logs (must be on storage the nodes share)

submitit picks Slurm on its own whenever `srun` is on the PATH; here the cluster is always named (`slurm` for
this executor, never submitit for `local`), so neither silently becomes the other.

Timeouts and preemption: each job is a `ResumableJob`, which submitit requeues (the same call) when Slurm signals
a preemption or the coming time limit (at most 3 times for timeouts); the requeued run resumes from its last epoch
checkpoint (fslib.engine.checkpoint), so `timeout_min` needs to cover one epoch, not the whole run.
"""

from __future__ import annotations

import time
from pathlib import Path

from submitit.helpers import Checkpointable
from tqdm.auto import tqdm

from fslib.batch.executors import Executor, Report
from fslib.batch.worker import execute
from fslib.store.jobs import Job, Outcome

CLUSTER_KEYS = ("partition", "gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min", "array_parallelism",
                "account", "qos", "constraint", "setup", "additional_parameters", "log_dir")
POLL_SECONDS = 5
GONE_GRACE_SECONDS = 30


def submitit_parameters(cluster: dict) -> dict:
    """The cluster section as submitit's AutoExecutor parameters."""
    SlurmExecutor.check_cluster(cluster)
    extra = dict(cluster.get("additional_parameters") or {})
    for key in ("account", "qos", "constraint"):
        if cluster.get(key):
            extra[key] = cluster[key]
    parameters = {"timeout_min": cluster.get("timeout_min", 60), "cpus_per_task": cluster.get("cpus_per_task", 1),
                  "slurm_array_parallelism": cluster.get("array_parallelism", 64),
                  "slurm_setup": list(cluster.get("setup") or []), "slurm_additional_parameters": extra}
    if cluster.get("partition"):
        parameters["slurm_partition"] = cluster["partition"]
    if cluster.get("gpus_per_node"):
        parameters["gpus_per_node"] = cluster["gpus_per_node"]
    if cluster.get("mem_gb"):
        parameters["mem_gb"] = cluster["mem_gb"]
    return parameters


class ResumableJob(Checkpointable):
    """The callable each Slurm job runs: `fslib.batch.worker.execute(job)`. Being Checkpointable, its `checkpoint`
    returns a resubmission of the same call, which submitit requeues on a timeout or preemption; the run then
    continues from its epoch checkpoint."""

    def __call__(self, job: dict) -> str:
        return execute(job)


class SlurmExecutor(Executor):
    name = "slurm"
    cluster_keys = CLUSTER_KEYS

    def __init__(self, cluster: dict, output_dir: Path | str = "outputs"):
        import submitit

        self.parameters = submitit_parameters(cluster)
        self.log_dir = Path(cluster.get("log_dir") or Path(output_dir) / "slurm-logs").resolve()
        self.executor = submitit.AutoExecutor(folder=self.log_dir / "%j", cluster="slurm")
        self.executor.update_parameters(**self.parameters)

    @classmethod
    def for_batch(cls, jobs: int, cluster: dict, output_dir: Path) -> SlurmExecutor:
        return cls(cluster, output_dir)  # how many jobs run at once is the cluster's `array_parallelism`

    @staticmethod
    def is_alive(marker: dict) -> bool:
        return job_alive(marker["job_id"])

    def launch(self, jobs: list[tuple[int, Job]], description: str, report: Report) -> None:
        """Submit `jobs` as one array, wait for all of them; a job that fails, is cancelled, times out or loses
        its node is an Outcome with ok=False, the error and its log. A job whose run another batch finished or
        took up since this one was planned (during an earlier stage, say) is not submitted."""
        to_submit = []
        for i, job in jobs:
            skipped = self.taken(job)
            if skipped:
                report(i, skipped)
            else:
                to_submit.append((i, job))
        if not to_submit:
            return
        self.executor.update_parameters(name=f"fslib-{description.replace(' ', '-')}")
        with self.executor.batch():
            submitted = {i: (job, self.executor.submit(ResumableJob(), job.payload())) for i, job in to_submit}
        for job, handle in submitted.values():
            self.mark_running(job, job_id=handle.job_id, log=str(handle.paths.stderr))
        first = next(iter(submitted.values()))[1]
        tqdm.write(f"{description}: submitted Slurm job array {first.job_id.split('_')[0]} "
                   f"({len(submitted)} jobs; logs in {self.log_dir})")
        gone_since: dict[int, float] = {}
        while submitted:
            queued = queued_jobs({handle.job_id.split("_")[0] for _, handle in submitted.values()})
            for i, (job, handle) in list(submitted.items()):
                outcome = None
                if handle.done():
                    outcome = self._outcome(job, handle)
                elif queued is not None and handle.job_id not in queued:
                    # out of the queue but sacct has no final state (an array task cancelled before it started
                    # never reaches the accounting): after a grace period, it failed
                    gone_since.setdefault(i, time.monotonic())
                    if time.monotonic() - gone_since[i] > GONE_GRACE_SECONDS:
                        outcome = Outcome(job, False, f"Slurm job {handle.job_id} left the queue without a result "
                                                      f"(cancelled or lost; last state {handle.state}); log: "
                                                      f"{handle.paths.stderr}", handle.paths.stderr)
                if outcome is not None:
                    self.clear_running(job)
                    del submitted[i]
                    report(i, outcome)
            if submitted:
                time.sleep(POLL_SECONDS)

    @staticmethod
    def _outcome(job: Job, handle) -> Outcome:
        try:
            handle.result()
            return Outcome(job, True)
        except Exception as error:  # failed, cancelled, timed out, node lost
            return Outcome(job, False, f"Slurm job {handle.job_id} ({handle.state}): {str(error).strip()[-1500:]}; "
                                       f"log: {handle.paths.stderr}", handle.paths.stderr)


def queued_jobs(job_ids) -> set[str] | None:
    """The ids (array tasks one by one, "12_3") that Slurm still has, pending or running, among `job_ids`;
    None when squeue cannot be asked."""
    import subprocess

    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-j", ",".join(sorted(map(str, job_ids)))],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # squeue refuses ids it has forgotten entirely: nothing of them is queued
        return set() if "Invalid job id" in out.stderr else None
    return set(out.stdout.split())


def job_alive(job_id: str) -> bool:
    """Whether Slurm still has the job (pending or running)."""
    queued = queued_jobs([job_id])
    return bool(queued) and str(job_id) in queued
