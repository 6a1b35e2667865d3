"""The README's "Extending": a toy executor, registered from this file in fslib.batch.executors.EXECUTORS, runs a
grid through `fslib batch --executor` end to end on the offline benchmark. It follows the Executor protocol: it
rechecks each job before starting it, leaves a running marker while it is in flight, and runs it through
fslib.batch.worker.execute, the entry point of every executor."""

import os
import sys
import textwrap

import pytest
import yaml

from fslib.batch import executors
from fslib.batch.planning import plan
from fslib.cli import main
from fslib.store.ledger import run_status

TOY = textwrap.dedent('''
    import os

    from fslib.batch.executors import recheck
    from fslib.batch.processes import identity
    from fslib.batch.worker import execute
    from fslib.store.ledger import Outcome, clear_running, mark_running

    STARTED = []  # the jobs this executor started, in order


    class InlineExecutor:
        """One job after another, in the batch's own process."""

        name = "inline"

        @classmethod
        def for_batch(cls, jobs, cluster, output_dir):
            return cls()

        @staticmethod
        def is_alive(marker):
            return marker.get("pid") == os.getpid()

        def run_jobs(self, jobs, description):
            outcomes = []
            for job in jobs:
                taken = recheck(job)
                if taken:
                    outcomes.append(Outcome(job, True, skipped=taken))
                    continue
                job.log.parent.mkdir(parents=True, exist_ok=True)
                mark_running(job.log, {"executor": self.name, **identity()})
                STARTED.append(job.name)
                try:
                    execute(job.payload())
                    outcomes.append(Outcome(job, True, log=job.log))
                except Exception as error:
                    outcomes.append(Outcome(job, False, str(error), job.log))
                finally:
                    clear_running(job.log)
            return outcomes
    ''')


@pytest.fixture
def toy_executor(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "toy_executor.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", f"{folder}:{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setitem(executors.EXECUTORS, "inline", "toy_executor:InlineExecutor")
    yield sys.modules.get("toy_executor") or __import__("toy_executor")
    sys.modules.pop("toy_executor", None)


def test_a_toy_executor_runs_a_grid_through_fslib_batch(mini_dir, tiny_model, tmp_path, toy_executor):
    params = tmp_path / "toy.yaml"
    params.write_text(yaml.safe_dump({
        "defaults": {"model": str(tiny_model), "source": "xtreme", "data_dir": str(mini_dir),
                     "output_dir": str(tmp_path / "outputs"), "epochs": 1, "learning_rate": 1.0e-3,
                     "max_train_examples": 60, "max_eval_examples": 20, "eval_batch_size": 128},
        "grids": [{"task": "ner", "methods": ["naive-co-train"], "k": [1], "seeds": [1, 2],
                   "languages": ["en", "qa"]}]}))
    assert main(["batch", str(params), "--executor", "inline", "--no-reports"]) == 0
    runs, _ = plan([params], prepare=False)
    assert [run_status(run.config, executors.job_alive) for run in runs] == ["done", "done"]
    assert sorted(toy_executor.STARTED) == sorted(run.config.run_id for run in runs)
    toy_executor.STARTED.clear()
    assert main(["batch", str(params), "--executor", "inline", "--no-reports"]) == 0  # all done: nothing started
    assert toy_executor.STARTED == []
