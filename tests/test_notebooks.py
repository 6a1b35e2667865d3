"""The notebooks: stored clean with a parameters cell, thin, and every one executes under papermill with mini
parameters and writes what it promises."""

import json

import nbformat
import pandas as pd
import pytest

from fslib.config import RunConfig
from fslib.worker import NOTEBOOKS, execute_run

TASKS = ("ner", "pos", "tydiqa", "xnli")
ANALYSES = ("main_results", "language_benefit", "gradient_heatmap", "script_study", "overfitting_curves")


@pytest.mark.parametrize("name", TASKS + ANALYSES)
def test_stored_without_outputs_with_a_parameters_cell(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert [cell for cell in code if "parameters" in cell.metadata.get("tags", [])] == [code[0]]
    assert notebook.metadata.kernelspec.name == "fslib"
    # thin: no function or class definitions; the logic lives in fslib
    assert not any(line.lstrip().startswith(("def ", "class ")) for cell in code for line in cell.source.splitlines())


def test_task_notebooks_differ_only_in_the_task():
    sources = {task: nbformat.read(NOTEBOOKS / f"{task}.ipynb", as_version=4) for task in TASKS}
    for task, notebook in sources.items():
        code = [cell.source.replace(f'task = "{task}"', 'task = "?"') for cell in notebook.cells
                if cell.cell_type == "code"]
        ner = [cell.source.replace('task = "ner"', 'task = "?"') for cell in sources["ner"].cells
               if cell.cell_type == "code"]
        assert code == ner, task


@pytest.mark.parametrize("task", ["pos", "tydiqa", "xnli"])
def test_task_notebook_runs_and_writes_its_rows(task, mini_dir, tiny_model, tmp_path):
    """NER runs through the batch tests; the other three here, one fast co-training run each."""
    config = RunConfig(task=task, method="gradient-co-train", k=1, seed=1, model=str(tiny_model),
                       data_dir=str(mini_dir), languages=["en", "qa", "qd"], output_dir=str(tmp_path), epochs=1,
                       learning_rate=1e-3, max_train_examples=60, max_eval_examples=20, progress=False)
    folder = execute_run(config)
    rows = pd.read_csv(folder / "results.csv")
    assert set(rows[rows.split == "test"].lang) == {"en", "qa", "qd"}
    executed = nbformat.read(folder / f"{task}.ipynb", as_version=4)
    outputs = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs)  # the dev curves
    assert json.loads((folder / "config.json").read_text())["task"] == task
