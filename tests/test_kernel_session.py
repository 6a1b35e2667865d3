"""One kernel for many notebooks (fslib.core.execution.KernelSession, a local batch's workers): each notebook starts as
in a fresh kernel (empty namespace, counts from 1, warnings shown again), a failure or the notebook limit brings a
new kernel, a run writes byte-identical rows to a run in a fresh kernel, and a worker runs one job after another
with each job's output in its own log. Real kernels, real runs, real worker processes."""

import gzip
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from fslib.batch.executors import LocalExecutor
from fslib.batch.worker import execute_run_notebook
from fslib.core import execution
from fslib.core.execution import SCRATCH, KernelSession
from fslib.store.config import RunConfig, run_dir
from fslib.store.ledger import RUN_LOG, Job

PROBE = """import os, json, warnings
from pathlib import Path
import probe_helper
probe_helper.warn()  # a library's warning: shown once per kernel unless the session resets the record
Path(out).write_text(json.dumps({"pid": os.getpid(), "left_over": "mark" in dir()}))
mark = 1
assert not fail
"""


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """A notebook that reports its kernel's pid and whether the previous notebook's variable is still there."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "probe_helper.py").write_text("import warnings\n\ndef warn():\n    warnings.warn('probe warning')\n")
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "fslib", "language": "python",
                                                                  "display_name": "fslib"}})
    parameters = nbformat.v4.new_code_cell("out = ''\nfail = False")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(PROBE)]
    nbformat.write(notebook, notebooks / "probe.ipynb")
    monkeypatch.setattr(execution, "NOTEBOOKS", notebooks)

    def run(session: KernelSession, number: int, fail: bool = False) -> dict:
        executed, out = tmp_path / f"probe-{number}.ipynb", tmp_path / f"probe-{number}.json"
        try:
            session.execute_notebook("probe", executed, {"out": str(out), "fail": fail})
        except PapermillExecutionError:
            assert fail
        cells = [cell for cell in nbformat.read(executed, as_version=4).cells if cell.cell_type == "code"]
        shown = "".join(output.get("text", "") for output in cells[-1].outputs)
        return {**json.loads(out.read_text()), "counts": [cell.execution_count for cell in cells],
                "warned": "probe warning" in shown}

    return run


def test_each_notebook_starts_fresh_in_the_same_kernel_until_a_failure_or_the_limit(probe, tmp_path):
    with KernelSession(notebooks_per_kernel=3) as session:
        first, second = probe(session, 1), probe(session, 2)
        assert first["pid"] == second["pid"]  # one kernel
        assert not second["left_over"]  # the first notebook's variable is gone
        assert first["counts"] == second["counts"] == [1, 2, 3]  # parameters, injected parameters, probe
        assert first["warned"] and second["warned"]

        failed = probe(session, 3, fail=True)
        assert failed["pid"] == first["pid"] and session.manager is None  # the failure took the kernel
        after = [probe(session, number) for number in (4, 5, 6, 7)]
        assert after[0]["pid"] != first["pid"]
        assert after[0]["pid"] == after[1]["pid"] == after[2]["pid"] != after[3]["pid"]  # three, then a new one
        kernel, scratch = session.manager.provisioner.process, session.scratch
        assert scratch.exists()
    assert kernel.poll() is not None and not scratch.exists()  # closing the session ends its kernel


def contents(path) -> bytes:
    """A file's bytes; a gzip file's uncompressed (its header holds a time and a temporary name)."""
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def test_a_run_in_a_reused_kernel_writes_what_a_fresh_kernel_writes(mini_dir, tiny_model, tmp_path):
    shared = dict(model=str(tiny_model), data_dir=str(mini_dir), languages=["en", "qa", "qd"], epochs=1,
                  learning_rate=1e-3, max_train_examples=60, max_eval_examples=20, progress=False,
                  output_dir=str(tmp_path))
    run = RunConfig(task="ner", method="gradient-co-train", k=1, seed=1, **shared)
    other = RunConfig(task="pos", method="naive-co-train", k=5, seed=2, **shared)  # other task, seed, shapes

    folder = execute_run_notebook(run)  # a kernel of its own
    written = ("results.csv", "surgery.csv", "training.csv", "predictions.jsonl.gz")
    fresh = {name: contents(folder / name) for name in written}
    fresh_counts = [cell.get("execution_count") for cell in nbformat.read(folder / "ner.ipynb", as_version=4).cells]
    shutil.rmtree(folder)

    with KernelSession() as session:
        execute_run_notebook(other, session=session)
        kernel = session.manager.provisioner.pid
        assert execute_run_notebook(run, session=session) == folder
        assert session.manager.provisioner.pid == kernel and session.executed == 2
    assert {name: contents(folder / name) for name in written} == fresh
    counts = [cell.get("execution_count") for cell in nbformat.read(folder / "ner.ipynb", as_version=4).cells]
    assert counts == fresh_counts


def one_slot_executor(monkeypatch) -> tuple[LocalExecutor, list]:
    """A local executor of one slot, and the list of the worker processes it starts."""
    executor, workers = LocalExecutor(jobs=1, gpus=[]), []
    start_worker = executor._worker
    monkeypatch.setattr(executor, "_worker", lambda slot: workers.append(start_worker(slot)) or workers[-1])
    return executor, workers


def test_a_worker_runs_its_jobs_one_after_another_each_logged_apart(mini_dir, tiny_model, tmp_path, monkeypatch):
    shared = dict(task="ner", method="naive-co-train", k=1, model=str(tiny_model), languages=["en", "qa"],
                  epochs=1, learning_rate=1e-3, max_train_examples=40, max_eval_examples=10, progress=False,
                  output_dir=str(tmp_path))
    configs = [RunConfig(seed=1, data_dir=str(mini_dir), **shared),
               RunConfig(seed=2, data_dir=str(tmp_path / "no-such-data"), **shared),  # fails in its notebook
               RunConfig(seed=3, data_dir=str(mini_dir), **shared)]
    jobs = [Job("run", config.to_dict(), run_dir(config), run_dir(config) / RUN_LOG, config.run_id)
            for config in configs]
    executor, workers = one_slot_executor(monkeypatch)

    outcomes = executor.run_jobs(jobs, "runs")
    assert [outcome.ok for outcome in outcomes] == [True, False, True]
    assert outcomes[1].error == f"failed; log: {jobs[1].log}"
    assert len({worker.pid for worker in workers}) == 1  # the failure did not end the worker
    assert [worker.poll() for worker in workers] == [0] * len(workers)  # closed at the end of the stage
    for job, outcome in zip(jobs, outcomes):
        log = job.log.read_text()
        assert (str(job.folder) in log) == outcome.ok  # the worker names what a job made
        assert not [other for other in jobs if other is not job and str(other.folder) in log]
    assert "no-such-data" in jobs[1].log.read_text()  # the failing run's traceback, in its own log
    assert (jobs[2].folder / "results.csv").exists() and not (jobs[1].folder / "results.csv").exists()


def test_a_worker_killed_during_a_job_fails_that_job_and_the_next_job_gets_a_new_worker(tmp_path, monkeypatch,
                                                                                        stand_in_ner_notebook):
    monkeypatch.setenv("FSLIB_NOTEBOOKS", str(stand_in_ner_notebook("import time\nif seed == 1:\n    time.sleep(300)")))
    configs = [RunConfig(task="ner", method="naive-co-train", k=1, seed=seed, model="some-model",
                         output_dir=str(tmp_path)) for seed in (1, 2)]
    jobs = [Job("run", config.to_dict(), run_dir(config), run_dir(config) / RUN_LOG, config.run_id)
            for config in configs]
    executor, workers = one_slot_executor(monkeypatch)

    def kill_the_first_worker_once_its_kernel_runs() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            scratch = [SCRATCH.match(path.name) for path in Path(tempfile.gettempdir()).iterdir()]
            if workers and [match for match in scratch if match and match["pid"] == str(workers[0].pid)]:
                time.sleep(2)  # the notebook is under way
                workers[0].kill()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_the_first_worker_once_its_kernel_runs)
    killer.start()
    outcomes = executor.run_jobs(jobs, "runs")
    killer.join()
    assert outcomes[0].error == f"worker exit status -9; log: {jobs[0].log}"
    assert outcomes[1].ok
    assert len(workers) == 2 and workers[0].pid != workers[1].pid
