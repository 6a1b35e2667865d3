"""The notebooks: stored clean with a parameters cell, thin, and every one executes under papermill with mini
parameters and writes what it promises."""

import json

import nbformat
import pandas as pd
import pytest

from fslib.batch.worker import execute_run_notebook
from fslib.core.execution import NOTEBOOKS
from fslib.store.config import RunConfig
from fslib.store.ledger import read_predictions

TASKS = ("ner", "pos", "tydiqa", "xnli")
ANALYSES = ("main_results", "language_benefit", "gradient_heatmap", "script_study", "overfitting_curves",
            "aggregators")


@pytest.mark.parametrize("name", TASKS + ANALYSES)
def test_stored_without_outputs_with_a_parameters_cell(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert [cell for cell in code if "parameters" in cell.metadata.get("tags", [])] == [code[0]]
    assert notebook.metadata.kernelspec.name == "fslib"
    # thin: no function or class definitions; the logic lives in fslib
    assert not any(line.lstrip().startswith(("def ", "class ")) for cell in code for line in cell.source.splitlines())


VIEW_HEADING = "## The task's view"
VIEWS = {"ner": ("entity_f1", "marked_sentences"), "pos": ("tag_scores", "tag_confusion"),
         "tydiqa": ("answers", "answer_scores"), "xnli": ("confusion_by_language",)}


def split_at_the_view(cells: list) -> tuple[list, list]:
    """A task notebook's cells: the body shared by all four, and its task's own view."""
    start = next(i for i, cell in enumerate(cells) if cell.source.startswith(VIEW_HEADING))
    return cells[:start], cells[start:]


def test_task_notebooks_share_their_body_and_each_has_its_view():
    bodies = {}
    for task in TASKS:
        shared, view = split_at_the_view(nbformat.read(NOTEBOOKS / f"{task}.ipynb", as_version=4).cells)
        bodies[task] = [cell.source.replace(f'task = "{task}"', 'task = "?"') for cell in shared[1:]]  # not the title
        code = "\n".join(cell.source for cell in view if cell.cell_type == "code")
        assert all(f"{function}(" in code for function in VIEWS[task]), task
    assert all(body == bodies["ner"] for body in bodies.values())


# what each view shows on the mini run: column headers, and the languages or labels
VIEW_OUTPUT = {"pos": ["precision", "recall", "support", "share of gold", "NOUN"],
               "tydiqa": ["question", "predicted", "gold", "question word", "answer length", "qd"],
               "xnli": ["entailment", "contradiction", "accuracy", "qa", "qd"]}


@pytest.mark.parametrize("task", ["pos", "tydiqa", "xnli"])
def test_task_notebook_runs_and_writes_its_rows(task, mini_dir, tiny_model, tmp_path):
    """NER runs through the batch tests; the other three here, one fast co-training run each."""
    config = RunConfig(task=task, method="gradient-co-train", k=1, seed=1, model=str(tiny_model),
                       data_dir=str(mini_dir), languages=["en", "qa", "qd"], output_dir=str(tmp_path), epochs=1,
                       learning_rate=1e-3, max_train_examples=60, max_eval_examples=20, progress=False)
    folder = execute_run_notebook(config)
    rows = pd.read_csv(folder / "results.csv")
    assert set(rows[rows.split == "test"].lang) == {"en", "qa", "qd"}
    predictions = read_predictions(folder)  # of the final test evaluation: 20 examples a language (the cap)
    assert [record["lang"] for record in predictions] == ["en"] * 20 + ["qa"] * 20 + ["qd"] * 20
    executed = nbformat.read(folder / f"{task}.ipynb", as_version=4)
    outputs = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs)  # the dev curves
    view = [output for cell in split_at_the_view(executed.cells)[1] if cell.cell_type == "code"
            for output in cell.outputs]
    shown = "".join(output.get("text", "") + output.get("data", {}).get("text/plain", "") for output in view)
    for expected in VIEW_OUTPUT[task]:
        assert expected in shown, (task, expected, shown[:2000])
    assert json.loads((folder / "config.json").read_text())["task"] == task
