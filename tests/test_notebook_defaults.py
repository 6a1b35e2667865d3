"""The task notebooks' parameters cells leave every hyper-parameter at None, the paper's value, so that a user who
changes only the model trains with the paper's settings; the demo's settings live only in params/mini, and
papermill's injection of them (what `fslib batch` does) gives the demo's configuration."""

from pathlib import Path

import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from fslib.analysis.notebook import config_from_parameters
from fslib.batch.params import load_params
from fslib.batch.worker import notebook_parameters
from fslib.core.execution import NOTEBOOKS
from fslib.core.tasks import get_task

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("ner", "pos", "tydiqa", "xnli")
HYPER_PARAMETERS = ("alpha", "epochs", "learning_rate", "train_batch_size", "target_batch_size")


def run_cells(cells: list) -> dict:
    namespace: dict = {}
    for cell in cells:
        exec(cell.source, namespace)  # plain assignments: the parameters cell and papermill's injected one
    return namespace


def parameters_cells(notebook) -> list:
    tagged = [i for i, cell in enumerate(notebook.cells) if {"parameters", "injected-parameters"} &
              set(cell.metadata.get("tags", []))]
    return [notebook.cells[i] for i in tagged]


@pytest.mark.parametrize("task", TASKS)
def test_the_parameters_cell_trains_with_the_papers_settings(task):
    notebook = nbformat.read(NOTEBOOKS / f"{task}.ipynb", as_version=4)
    values = run_cells(parameters_cells(notebook))
    assert {name: values[name] for name in HYPER_PARAMETERS} == dict.fromkeys(HYPER_PARAMETERS)
    assert values["extra"] == {}  # no caps on the data
    config = config_from_parameters(values, values["extra"])
    paper = get_task(task)
    assert (config.epochs, config.learning_rate, config.alpha, config.train_batch_size, config.target_batch_size) \
        == (paper.epochs, paper.learning_rate, paper.alpha, 32, values["k"])
    assert config.max_train_examples is None and config.max_eval_examples is None
    assert config.output_dir == "../outputs/by-hand"  # never a batch's folder (outputs/, outputs/authors/)


@pytest.mark.parametrize("task", TASKS)
def test_papermill_injects_the_demo_settings_from_params_mini(task):
    demo = [run for run in load_params(ROOT / "params" / "mini" / f"{task}.yaml").runs
            if run.method == "gradient-co-train"][0]
    # as papermill.execute_notebook prepares a notebook before it starts the kernel
    notebook = parameterize_notebook(load_notebook_node(str(NOTEBOOKS / f"{task}.ipynb")), notebook_parameters(demo))
    values = run_cells(parameters_cells(notebook))
    config = config_from_parameters(values, values["extra"])
    assert config == demo.resolved() and config.config_hash == demo.config_hash
    assert (config.epochs, config.learning_rate, config.max_train_examples) == (2, 1e-3, 600)


def test_params_mini_set_what_the_notebooks_leave_to_the_paper():
    for path in sorted((ROOT / "params" / "mini").glob("*.yaml")):
        for run in load_params(path).runs:
            # a randomly initialised tiny model: a few epochs at a large step on capped data (authors.yaml: 1.5e-3)
            assert run.epochs == 2 and run.learning_rate >= 1e-3, path
            assert run.max_train_examples and run.max_eval_examples, path
