"""A batch killed with SIGKILL leaves no worker or kernel behind and the next batch finishes its run; a second batch
on the same output folder is refused and names the first; running markers are not fooled by a reused pid; a run
finished by another batch is not started again. Real processes and signals throughout."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fslib.batch.executors import LocalExecutor, job_alive
from fslib.batch.planning import plan, run_batch
from fslib.batch.processes import LOCK_FILE, OutputFolderBusy, hold_output_folders, identity, lock_holder, start_time
from fslib.store.config import RunConfig, run_dir
from fslib.store.ledger import RUN_LOG, Job, run_status

FAST = {"epochs": 1, "learning_rate": 1.0e-3, "max_train_examples": 40, "max_eval_examples": 10}


def one_run(path: Path, output_dir: Path, target: str = "de", **defaults) -> Path:
    path.write_text(yaml.safe_dump({"defaults": {"source": "xtreme", "output_dir": str(output_dir), **FAST,
                                                 **defaults},
                                    "grids": [{"task": "ner", "methods": ["naive-co-train"], "k": [1], "seeds": [1],
                                               "languages": ["en", target]}]}))
    return path


def batch_command(params: Path) -> list[str]:
    return [sys.executable, "-m", "fslib.cli", "batch", str(params), "--no-reports"]


def children() -> dict[int, int]:
    """pid -> parent pid of every process on this machine."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(text[text.rindex(")") + 2:].split()[1])
    return parents


def descendants(pid: int) -> list[int]:
    parents, found, frontier = children(), [], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"waited {seconds} s for {what}")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_sigkill_of_a_batch_takes_its_worker_and_kernel_and_a_second_batch_is_refused(mini_dir, tiny_model,
                                                                                       tmp_path):
    params = one_run(tmp_path / "one.yaml", tmp_path / "out", "qa", model=str(tiny_model), data_dir=str(mini_dir))
    first = subprocess.Popen(batch_command(params), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    family: dict[int, int] = {}  # pid -> start time of the batch's descendants
    try:
        # the batch's worker has started its kernel: the run is under way
        kernel = wait_for(lambda: [pid for pid in descendants(first.pid) if "ipykernel" in command_line(pid)], 120,
                          "the first batch's kernel")
        family = {pid: start_time(pid) for pid in descendants(first.pid)}
        worker = [pid for pid in family if "fslib.batch.worker" in command_line(pid)]
        assert len(worker) == 1 and kernel
        for pid in kernel:  # hold the run where it is while the second batch tries (the tiny run is quick)
            os.kill(pid, signal.SIGSTOP)

        second = subprocess.run(batch_command(params), capture_output=True, text=True, timeout=120)
        assert second.returncode == 3
        assert f"in use by another fslib batch: pid {first.pid} on this host" in second.stderr
        assert f"cli.py batch {params} --no-reports" in second.stderr  # the holder's command
        assert set(family) <= set(descendants(first.pid))  # the first batch's processes are left alone

        for pid in kernel:
            os.kill(pid, signal.SIGCONT)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(lambda: all(start_time(pid) is None for pid in family), 10, "the worker and its kernel to end")
    finally:  # a failed test leaves nothing running either
        if first.poll() is None:
            first.kill()
        first.wait()
        for pid, started in family.items():
            if start_time(pid) == started:  # still that process, not a reused pid
                os.kill(pid, signal.SIGKILL)

    runs, _ = plan([params], prepare=False)
    assert [run.status for run in runs] in (["failed"], ["pending"])  # the marker of the dead worker is stale
    assert lock_holder(tmp_path / "out")["pid"] == first.pid  # the dead batch's record is left, its lock is not
    assert run_batch([params], reports=False) == 0
    assert [run.status for run in plan([params], prepare=False)[0]] == ["done"]
    assert (runs[0].folder / "results.csv").exists() and not (runs[0].folder / "FAILED.json").exists()


def test_a_second_batch_on_a_held_output_folder_is_refused_before_it_runs_anything(tmp_path):
    params = one_run(tmp_path / "grid.yaml", tmp_path / "out", model="some-hub-model")
    with hold_output_folders([tmp_path / "out"], command="fslib batch the-first.yaml"):
        refused = subprocess.run(batch_command(params), capture_output=True, text=True, timeout=120)
        assert lock_holder(tmp_path / "out")["pid"] == os.getpid()
    assert refused.returncode == 3
    assert (f"output folder {(tmp_path / 'out').resolve()} is in use by another fslib batch: pid {os.getpid()} on "
            f"this host, since ") in refused.stderr
    assert "fslib batch the-first.yaml" in refused.stderr
    assert not (tmp_path / "out" / "runs").exists()  # nothing planned, prepared or run
    with hold_output_folders([tmp_path / "out"]):  # released on leaving: the next batch takes it
        pass


def test_a_report_build_on_a_folder_a_batch_holds_is_refused(tmp_path):
    (tmp_path / "out" / "runs").mkdir(parents=True)
    with hold_output_folders([tmp_path / "out"], command="fslib batch the-first.yaml"):
        refused = subprocess.run([sys.executable, "-m", "fslib.cli", "reports", str(tmp_path / "out")],
                                 capture_output=True, text=True, timeout=120)
    assert refused.returncode == 3 and "fslib batch the-first.yaml" in refused.stderr
    assert not (tmp_path / "out" / "reports").exists()


def test_the_lock_of_a_killed_batch_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from fslib.batch.processes import hold_output_folders\n"
                               f"with hold_output_folders([{str(tmp_path)!r}], command='holder'):\n"
                               "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(OutputFolderBusy, match=f"pid {holder.pid} on this host.*holder"):
        with hold_output_folders([tmp_path]):
            pass
    holder.kill()
    holder.wait()
    with hold_output_folders([tmp_path], command="the next one"):
        assert lock_holder(tmp_path) == {**identity(), "since": lock_holder(tmp_path)["since"],
                                         "command": "the next one"}
    assert (tmp_path / LOCK_FILE).exists()


@pytest.fixture
def planned(tmp_path) -> RunConfig:
    params = one_run(tmp_path / "grid.yaml", tmp_path / "out", model="some-hub-model")
    (run,), _ = plan([params], prepare=False)
    run_dir(run.config).mkdir(parents=True)
    return run.config


def write_marker(config: RunConfig, **record) -> None:
    (run_dir(config) / "worker.running.json").write_text(json.dumps({"executor": "local", **record}))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads start times from /proc (Linux)")
def test_a_running_marker_needs_the_same_process_not_just_its_pid(planned):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        real = identity(sleeper.pid)
        write_marker(planned, **real)
        assert run_status(planned, job_alive) == "running"
        write_marker(planned, **{**real, "start": real["start"] + 1})  # the pid now belongs to another process
        assert run_status(planned, job_alive) == "pending"
        write_marker(planned, **{**real, "start": None})  # a marker that cannot tell
        assert run_status(planned, job_alive) == "pending"
        # another host: its heartbeat is all there is to go by (rewritten every minute, stale after 10)
        write_marker(planned, **{**real, "host": "elsewhere", "heartbeat": time.time() - 30})
        assert run_status(planned, job_alive) == "running"
        write_marker(planned, **{**real, "host": "elsewhere", "heartbeat": time.time() - 3600})
        assert run_status(planned, job_alive) == "pending"
    finally:
        sleeper.kill()
        sleeper.wait()
    write_marker(planned, **real)
    assert run_status(planned, job_alive) == "pending"  # the process itself is gone


@pytest.mark.parametrize("executor", ["local", "slurm"])
def test_a_run_done_or_running_elsewhere_by_its_turn_is_not_started(planned, executor, tmp_path, request):
    """Locally, just before its job starts; on Slurm, before the array is submitted (nothing is: Slurm's commands
    are fakes that fail, so a submission would fail)."""
    def executor_of_this_batch():
        if executor == "local":
            return LocalExecutor(jobs=1, gpus=[])
        from fslib.batch.slurm import SlurmExecutor

        request.getfixturevalue("fake_slurm_commands")

        return SlurmExecutor({}, tmp_path / "slurm")

    folder = run_dir(planned)
    job = Job("run", planned.to_dict(), folder, folder / RUN_LOG, planned.run_id)
    marker = {"executor": "local", **identity(), "heartbeat": time.time()}  # this process stands for another batch
    write_marker(planned, **marker)
    (outcome,) = executor_of_this_batch().run_jobs([job], "runs")
    assert outcome.ok and outcome.skipped == "running"
    assert json.loads((folder / "worker.running.json").read_text()) == marker  # the other batch's marker is kept
    assert not (folder / RUN_LOG).exists()

    (folder / "worker.running.json").unlink()
    planned.save(folder / "config.json")  # what a finished run leaves
    (folder / "results.csv").write_text("lang,split,metric,value\nqa,test,f1,50.0\n")
    (outcome,) = executor_of_this_batch().run_jobs([job], "runs")
    assert outcome.ok and outcome.skipped == "done"
    assert not (folder / RUN_LOG).exists()
