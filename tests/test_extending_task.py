"""The README's "Extending": a task. A toy task, defined in this file and registered by `register_task` in a module
named in FSLIB_TASK_MODULES (so that the batch's workers find it too), runs through `fslib batch` end to end on
the offline benchmark: POS tagging under another name, reading the benchmark's udpos/ files. No code of the kit
names it. An unknown task is an error that lists the known ones."""

import textwrap

import pandas as pd
import pytest
import yaml

from fslib.batch.cost import DataSizes, run_cost
from fslib.batch.planning import plan
from fslib.cli import main
from fslib.core.tasks import TASKS, Task, get_task, register_task, registry, task_names
from fslib.formats.xtreme import available_languages
from fslib.store.ledger import run_status

TOY = textwrap.dedent('''
    from dataclasses import replace

    from fslib.core.tasks import get_task, register_task

    # the offline benchmark's POS files under another name, run by the POS notebook (`notebook`, copied by
    # replace); sizes for the cost where the files are absent
    TOY_TAGGING = register_task(replace(get_task("pos"), name="toytag", title="Toy tagging", epochs=1,
                                        cost_sizes={"en-train": 50, "en-dev": 10, "en-test": 10, "target-dev": 10,
                                                    "target-test": 10}))
    ''')


@pytest.fixture
def toy_task(plugin_module, monkeypatch):
    """`toy_task` importable here and in the batch's workers (PYTHONPATH), named in FSLIB_TASK_MODULES."""
    plugin_module("toy_task", TOY)
    monkeypatch.setenv(registry.TASK_MODULES_VARIABLE, "toy_task")
    yield "toytag"
    TASKS.pop("toytag", None)
    registry._loaded.discard("toy_task")


def test_an_unknown_task_is_an_error_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"^unknown task 'pawsx'; valid tasks: ner, pos, tydiqa, xnli$"):
        get_task("pawsx")
    with pytest.raises(TypeError, match="register_task takes a fslib.core.tasks.Task, got dict"):
        register_task({"name": "pawsx"})
    with pytest.raises(ValueError, match="task 'pawsx': kind 'pairs' is not one of tagging, qa, classification"):
        Task("pawsx", "pairs", ("0", "1"), "accuracy", ("en",), 2e-5, 10, 128, 0.1)


def test_a_module_named_in_the_environment_registers_its_task(toy_task, monkeypatch):
    assert "toytag" not in TASKS
    assert get_task(toy_task).labels == get_task("pos").labels and "toytag" in task_names()
    monkeypatch.setenv(registry.TASK_MODULES_VARIABLE, "toy_task,no_such_task_module")
    with pytest.raises(ImportError, match="FSLIB_TASK_MODULES names 'no_such_task_module', which cannot be"):
        get_task("pawsx")


def test_the_toy_tasks_files_and_cost_come_from_its_task(toy_task, mini_dir):
    from fslib.store.config import RunConfig

    assert available_languages(mini_dir, toy_task, "test") == available_languages(mini_dir, "pos", "test")
    config = RunConfig(task=toy_task, method="ord-FS", k=2, seed=1, model="xlm-roberta-base",
                       languages=["en", "qa"], data_dir=str(mini_dir), train_batch_size=4, grad_accum=1, epochs=1)
    sizes = DataSizes()
    # the files' sentences (the offline benchmark: 2,000 English train sentences, targets 100), not cost_sizes
    assert sizes.examples(config.resolved(), "en", "train") == 2000 and not sizes.estimated
    cost = run_cost(config, sizes)
    assert cost.steps["target-adapting"] == 1  # K=2 shots of one target, batch 4: one step
    absent = RunConfig(task=toy_task, method="ord-FS", k=2, seed=1, model="xlm-roberta-base",
                       languages=["en", "qa"], data_dir=None, source="hub").resolved()
    assert sizes.examples(absent, "en", "train") == 50 and sizes.estimated == {toy_task}  # its cost_sizes


def test_a_toy_task_runs_through_fslib_batch(mini_dir, tiny_model, tmp_path, toy_task):
    params = tmp_path / "toy.yaml"
    params.write_text(yaml.safe_dump({
        "defaults": {"model": str(tiny_model), "source": "xtreme", "data_dir": str(mini_dir),
                     "output_dir": str(tmp_path / "outputs"), "learning_rate": 1.0e-3,
                     "max_train_examples": 60, "max_eval_examples": 20, "eval_batch_size": 128},
        "grids": [{"task": toy_task, "methods": ["ord-FS"], "k": [1], "seeds": [1], "languages": ["en", "qa"]}]}))
    assert main(["batch", str(params), "--no-reports"]) == 0
    [run], _ = plan([params], prepare=False)
    assert run.config.task == toy_task and run.config.resolved().epochs == 1  # the toy's own default
    assert run_status(run.config, lambda record: False) == "done"
    rows = pd.read_csv(run.folder / "results.csv")
    test = rows[rows["split"] == "test"]
    assert set(test["task"]) == {toy_task} and set(test["lang"]) == {"en", "qa"}
    assert set(test["metric"]) >= {"f1"} and test["value"].between(0, 100).all()
