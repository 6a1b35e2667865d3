"""submitit against a REAL one-node Slurm cluster on this machine (scripts/slurm-test-cluster.sh).

Opt-in: installing Debian packages and starting root daemons is not something a plain `pytest` should do, so
these tests run only with FSLIB_SLURM_TESTS=1 (`make test-slurm`), and are skipped with the script's reason
where the cluster cannot be set up (not Debian/apt, not root). The module fixture runs `install` + `start`
and always `stop` at teardown.

What the kit's Slurm executor relies on, checked here for real:
  * AutoExecutor(cluster="slurm") submits through sbatch and gets the value back (job id = real Slurm id);
    cluster="local" stays local even though srun is on PATH (AutoExecutor() alone would pick slurm);
  * map_array returns every element's result;
  * a cancelled (killed) job ends in a CANCELLED state and job.result() raises. submitit learns states only
    through `sacct`, which is why the test cluster runs slurmdbd (accounting) at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

PARAMS = dict(slurm_partition="debug", timeout_min=5, cpus_per_task=1, mem_gb=1)
JOB_TIMEOUT_S = 120  # a job that takes longer on an idle 1-node cluster is a failure, not a slow test


@pytest.fixture(scope="module", autouse=True)
def _pickle_test_functions_by_value():
    # submitit cloudpickles the function; functions of this module would be pickled by reference to a module
    # `test_slurm_cluster` that the job's python cannot import (tests/ is no package and not on its sys.path).
    # The kit's own functions live in the installed `fslib` package and need none of this.
    import cloudpickle

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


# ---- functions that run on the node ------------------------------------------------------------------------


def _answer() -> tuple[int, str | None]:
    return 6 * 7, os.environ.get("SLURM_JOB_ID")


def _square(x: int) -> tuple[int, str | None]:
    return x * x, os.environ.get("SLURM_ARRAY_TASK_ID")


def _sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "not cancelled"


# ---- helpers -----------------------------------------------------------------------------------------------


def _executor(folder: Path):
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(**PARAMS)
    return executor


def _wait_done(job, timeout: float = JOB_TIMEOUT_S) -> None:
    """job.result() has no timeout; never let a broken cluster hang the test run."""
    deadline = time.monotonic() + timeout
    while not job.done():
        if time.monotonic() > deadline:
            job.cancel(check=False)
            pytest.fail(
                f"job {job.job_id} not done after {timeout}s (state {job.state}); "
                f"stdout {job.paths.stdout}: {job.stdout()!r}; stderr: {job.stderr()!r}"
            )
        time.sleep(0.5)


def _sacct_state(job) -> str:
    return job.get_info(mode="force").get("State", "")


def _wait_state(job, prefix: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    state = _sacct_state(job)
    while not state.startswith(prefix):
        if time.monotonic() > deadline:
            pytest.fail(f"job {job.job_id}: sacct state {state!r} after {timeout}s, expected {prefix}")
        time.sleep(1)
        state = _sacct_state(job)
    return state


# ---- tests -------------------------------------------------------------------------------------------------


def test_sinfo_shows_node_idle(slurm_cluster):
    out = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N %P %t %c"], capture_output=True, text=True, check=True
    ).stdout.split()
    node, partition, state, cpus = out
    assert node == slurm_cluster["node"]
    assert partition == "debug*"  # the default partition
    assert state == "idle"
    assert int(cpus) >= 1


def test_autoexecutor_cluster_choice(slurm_cluster, tmp_path):
    import submitit

    # submitit picks slurm whenever srun is on PATH ...
    assert shutil.which("srun")
    assert submitit.AutoExecutor(folder=tmp_path / "auto").cluster == "slurm"
    # ... so the kit must name the cluster; an explicit "local" stays local (no sbatch, no SLURM_JOB_ID)
    local = submitit.AutoExecutor(folder=tmp_path / "local", cluster="local")
    assert local.cluster == "local"
    local.update_parameters(timeout_min=1)
    job = local.submit(_answer)
    assert isinstance(job, submitit.LocalJob)
    _wait_done(job)
    assert job.result() == (42, None)


def test_submitit_round_trip(slurm_cluster, tmp_path):
    import submitit

    executor = _executor(tmp_path)
    assert executor.cluster == "slurm"
    job = executor.submit(_answer)
    assert isinstance(job, submitit.SlurmJob)
    assert job.job_id.isdigit(), job.job_id  # a real Slurm id, from sbatch --parsable
    _wait_done(job)
    value, slurm_job_id = job.result()
    assert value == 42
    assert slurm_job_id == job.job_id
    assert _wait_state(job, "COMPLETED") == "COMPLETED"
    # where submitit puts the logs: <folder>/<job id>_<task>_log.{out,err}; the sbatch script next to them
    assert job.paths.stdout == tmp_path / f"{job.job_id}_0_log.out"
    assert job.paths.stderr == tmp_path / f"{job.job_id}_0_log.err"
    assert job.paths.stdout.exists() and job.paths.stderr.exists()
    assert job.paths.submission_file.exists()
    assert "#SBATCH --partition=debug" in job.paths.submission_file.read_text()
    assert "Job completed successfully" in job.stdout()  # submitit's own log lines (job.stdout() reads it)


def test_map_array(slurm_cluster, tmp_path):
    executor = _executor(tmp_path)
    jobs = executor.map_array(_square, [1, 2, 3])
    assert len(jobs) == 3
    array_id = jobs[0].job_id.split("_")[0]
    assert array_id.isdigit()
    assert [job.job_id for job in jobs] == [f"{array_id}_{i}" for i in range(3)]
    for job in jobs:
        _wait_done(job)
    assert [job.result() for job in jobs] == [(1, "0"), (4, "1"), (9, "2")]
    assert all(_wait_state(job, "COMPLETED") == "COMPLETED" for job in jobs)
    assert all(job.paths.stdout.exists() for job in jobs)


def test_cancelled_job_reports_failure(slurm_cluster, tmp_path):
    from submitit.core.utils import UncompletedJobError

    executor = _executor(tmp_path)
    job = executor.submit(_sleep, 600)
    _wait_state(job, "RUNNING")
    assert not job.done()
    job.cancel()  # scancel <id>; the kit sees the same as for a job killed by an admin or the scheduler
    _wait_state(job, "CANCELLED")  # "CANCELLED by 0" (uid of who cancelled it)
    _wait_done(job, timeout=60)
    assert job.state.startswith("CANCELLED"), job.state
    # NB: for a job without a result file, result() first waits job._results_timeout_s (15 s) for the file
    # (slow shared filesystems) before raising: a killed job takes that long to be reported.
    with pytest.raises(UncompletedJobError, match="CANCELLED"):
        job.result()
    # the job's logs stay where submitit put them; slurmstepd notes the cancellation in the job's stderr
    assert job.paths.stdout.exists()
    assert "CANCELLED" in (job.stderr() or "")
