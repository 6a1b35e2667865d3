"""The README's "Extending": an analysis notebook. A toy analysis, its notebook written by this file and registered
by `register_analysis`, is planned from the results, executed by `fslib reports` and linked from the report
index, with its table; an analysis whose results are absent is listed as not built, with its reason."""

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from fslib.analysis import analyses
from fslib.analysis.analyses import Analysis, preferred_k, register_analysis
from fslib.cli import main
from fslib.store.results import COLUMNS

NOTEBOOK_CELLS = [
    ("parameters", 'results_path = "runs"\noutput_dir = "."\ntask = "ner"\nk = 1'),
    (None, "from pathlib import Path\n\nimport pandas as pd\n\n"
           "rows = pd.concat(pd.read_csv(path) for path in sorted(Path(results_path).rglob('results.csv')))\n"
           "rows = rows[(rows['task'] == task) & (rows['k'] == k) & (rows['split'] == 'test')]\n"
           "table = rows.groupby(['method', 'lang'])['value'].mean().rename('mean').reset_index()\n"
           "table.to_csv(Path(output_dir) / 'mean_by_language.csv', index=False)\n"
           "table"),
]


def write_toy_notebook(path: Path) -> Path:
    notebook = nbformat.v4.new_notebook()
    for tag, source in NOTEBOOK_CELLS:
        cell = nbformat.v4.new_code_cell(source)
        if tag:
            cell.metadata["tags"] = [tag]
        notebook.cells.append(cell)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def toy_plan(rows: pd.DataFrame, runs_dir: Path) -> dict | str:
    test = rows[(rows["split"] == "test") & (rows["method"] == "ord-FS")]
    return {"k": preferred_k(test["k"])} if not test.empty else "no ord-FS test results"


def write_run(runs: Path, task: str, method: str, k: int, seed: int) -> None:
    """results.csv with test scores 10 * seed + i for the i-th language, and the run's config.json."""
    rows = [{"task": task, "method": method, "k": k, "seed": seed, "lang": lang, "split": "test", "metric": "f1",
             "value": 10.0 * seed + i, "epoch": None, "step": None, "run_id": f"{task}-{method}-{seed}",
             "config_hash": "h"} for i, lang in enumerate(("en", "qa"))]
    folder = runs / task / method / f"k{k}" / f"seed{seed}"
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(folder / "results.csv", index=False)
    (folder / "config.json").write_text(json.dumps({"task": task, "method": method, "k": k, "seed": seed,
                                                    "model": "/models/tiny"}))


@pytest.fixture
def only_the_toy_analysis(tmp_path):
    """The registry holding the toy alone (the kit's analyses' notebooks are not what is tested here)."""
    kit_analyses = dict(analyses.ANALYSES)
    analyses.ANALYSES.clear()
    notebook = write_toy_notebook(tmp_path / "toy_mean.ipynb")
    yield register_analysis(Analysis("toy_mean", str(notebook), "mean test score per language", toy_plan))
    analyses.ANALYSES.clear()  # the toy gone, the kit's back: later tests build the kit's reports
    analyses.ANALYSES.update(kit_analyses)


def test_a_toy_analysis_runs_in_the_reports_and_the_index_links_it(tmp_path, only_the_toy_analysis):
    runs = tmp_path / "out" / "runs"
    for seed in (1, 2):
        write_run(runs, "ner", "ord-FS", 5, seed)
        write_run(runs, "ner", "ord-FS", 1, seed)  # another K: the plan picks K=5
        write_run(runs, "pos", "co-FT", 5, seed)  # no ord-FS: the toy is not built for pos
    assert main(["reports", str(tmp_path / "out")]) == 0
    reports = tmp_path / "out" / "reports"
    table = pd.read_csv(reports / "toy_mean_ner" / "mean_by_language.csv")
    # seeds 1 and 2: (10 + 20) / 2 = 15 for en, 16 for qa, at K=5 only
    assert table.to_dict("records") == [{"method": "ord-FS", "lang": "en", "mean": 15.0},
                                        {"method": "ord-FS", "lang": "qa", "mean": 16.0}]
    index = (reports / "index.html").read_text()
    assert '<a href="toy_mean_ner.html">toy_mean_ner</a>' in index and (reports / "toy_mean_ner.html").is_file()
    assert "mean test score per language (task=ner, k=5)" in index
    assert 'href="toy_mean_ner/mean_by_language.csv"' in index
    assert "toy_mean_pos: no ord-FS test results" in index
