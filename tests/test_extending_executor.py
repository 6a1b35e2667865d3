"""The README's "Extending": a toy executor, registered from this file in fslib.batch.executors.EXECUTORS, runs a
grid through `fslib batch --executor` end to end on the offline benchmark. An `Executor` subclass, it says only how
a job is launched (in the batch's own process, through fslib.batch.worker.execute, the entry point of every
executor); the base rechecks, marks and reports. A parameter file's `cluster:` section goes to the executor it
names, checked against that executor's keys."""

import textwrap

import pytest
import yaml

from fslib.batch import executors
from fslib.batch.params import ParamsError, load_params
from fslib.batch.planning import plan
from fslib.cli import main
from fslib.store.ledger import run_status

TOY = textwrap.dedent('''
    import os

    from fslib.batch.executors import Executor
    from fslib.batch.processes import identity
    from fslib.batch.worker import execute
    from fslib.store.ledger import Outcome

    STARTED = []  # the jobs this executor started, in order
    SETTINGS = []  # the cluster settings each batch gave it


    class InlineExecutor(Executor):
        """One job after another, in the batch's own process."""

        name = "inline"
        cluster_keys = ("label",)

        @classmethod
        def for_batch(cls, jobs, cluster, output_dir):
            SETTINGS.append(cluster)
            return cls()

        @staticmethod
        def is_alive(marker):
            return marker.get("pid") == os.getpid()

        def launch(self, jobs, description, report):
            for index, job in jobs:
                skipped = self.taken(job)
                if skipped:
                    report(index, skipped)
                    continue
                with self.running(job, **identity()):
                    STARTED.append(job.name)
                    try:
                        execute(job.payload())
                        report(index, Outcome(job, True, log=job.log))
                    except Exception as error:
                        report(index, Outcome(job, False, str(error), job.log))
    ''')


@pytest.fixture
def toy_executor(plugin_module, monkeypatch):
    plugin_module("toy_executor", TOY)
    monkeypatch.setitem(executors.EXECUTORS, "inline", "toy_executor:InlineExecutor")
    return __import__("toy_executor")


def test_a_toy_executor_runs_a_grid_through_fslib_batch(mini_dir, tiny_model, tmp_path, toy_executor):
    params = tmp_path / "toy.yaml"
    params.write_text(yaml.safe_dump({
        "defaults": {"model": str(tiny_model), "source": "xtreme", "data_dir": str(mini_dir),
                     "output_dir": str(tmp_path / "outputs"), "epochs": 1, "learning_rate": 1.0e-3,
                     "max_train_examples": 60, "max_eval_examples": 20, "eval_batch_size": 128},
        "grids": [{"task": "ner", "methods": ["naive-co-train"], "k": [1], "seeds": [1, 2],
                   "languages": ["en", "qa"]}],
        "cluster": {"executor": "inline", "label": "toy"}}))
    assert main(["batch", str(params), "--executor", "inline", "--no-reports"]) == 0
    assert toy_executor.SETTINGS == [{"label": "toy"}]  # the section's settings, without `executor`
    runs, _ = plan([params], prepare=False)
    assert [run_status(run.config, executors.job_alive) for run in runs] == ["done", "done"]
    assert sorted(toy_executor.STARTED) == sorted(run.config.run_id for run in runs)
    toy_executor.STARTED.clear()
    assert main(["batch", str(params), "--executor", "inline", "--no-reports"]) == 0  # all done: nothing started
    assert toy_executor.STARTED == []


def test_a_cluster_section_goes_to_the_executor_it_names(tmp_path, toy_executor):
    def load_with(cluster):
        path = tmp_path / "grid.yaml"
        path.write_text(yaml.safe_dump({"defaults": {"model": "xlm-roberta-base"},
                                        "grids": [{"task": "ner", "methods": ["ord-FS"], "k": [1], "seeds": [1],
                                                   "languages": ["en", "de"]}], "cluster": cluster}))
        return load_params(path)

    assert load_with({"executor": "inline", "label": "x"}).cluster == {"executor": "inline", "label": "x"}
    assert load_with({"partition": "gpu"}).cluster == {"partition": "gpu"}  # no `executor`: Slurm's settings
    with pytest.raises(ParamsError, match=r"cluster: unknown key\(s\) partition; valid keys: label$"):
        load_with({"executor": "inline", "partition": "gpu"})  # Slurm's key, not the toy's
    with pytest.raises(ParamsError, match=r"cluster: unknown key\(s\) label; valid keys: partition, "):
        load_with({"label": "x"})
    with pytest.raises(ParamsError, match=r"cluster.executor: unknown executor 'ray'; valid executors: local, "
                                          r"slurm, inline"):
        load_with({"executor": "ray"})
    with pytest.raises(ParamsError, match=r"unknown key\(s\) partition; valid keys: none \(executor 'local'"):
        load_with({"executor": "local", "partition": "gpu"})
    assert executors.cluster_settings({"executor": "inline", "label": "x"}, "slurm") == {}
