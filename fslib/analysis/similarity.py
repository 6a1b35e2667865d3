"""Figure 1: per-language gradient cosine similarities of co-training runs, averaged over runs.

A co-training run with `gradient_similarity` writes `gradient_similarity.csv` (lang_a, lang_b, cosine; square,
diagonal included) beside its `config.json`. The paper averages the matrices of the five seeds' final models per
method and orders the languages so that each family sits together.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fslib.core.containment import files_named
from fslib.core.languages import TASK_LANGUAGES, family_order
from fslib.store.results import CONFIG_FILE

SIMILARITY_FILE = "gradient_similarity.csv"
COLUMNS = ["task", "method", "k", "seed", "run_id", "model", "lang_a", "lang_b", "cosine"]


def load_gradient_similarity(path: Path | str) -> pd.DataFrame:
    """Every `gradient_similarity.csv` under `path` (a run folder or a folder of runs), tagged with its run's
    task, method label (`method_label`, else `method`), k, seed and model from `config.json`."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(files_named(path, SIMILARITY_FILE))
    frames = []
    for file in files:
        config = json.loads((file.parent / CONFIG_FILE).read_text())
        frame = pd.read_csv(file, dtype={"lang_a": str, "lang_b": str})
        frame["task"], frame["k"], frame["seed"] = config["task"], config["k"], config["seed"]
        frame["method"] = config.get("method_label") or config["method"]
        frame["model"] = config.get("model")
        frame["run_id"] = str(file.parent.relative_to(path)) if path.is_dir() else str(file.parent)  # the run
        frames.append(frame[COLUMNS])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def similarity_matrix(table: pd.DataFrame, method: str, task: str | None = None, k: int | None = None,
                      order=None) -> pd.DataFrame:
    """The cosine matrix of one method (optionally one task and K), averaged cell by cell over runs, with the
    languages grouped by family (`family_order` over the task's language list, or over `order` if given)."""
    chosen = table["method"] == method
    if task is not None:
        chosen &= table["task"] == task
    if k is not None:
        chosen &= table["k"] == k
    rows = table[chosen]
    if rows.empty:
        raise ValueError(f"no gradient similarities for method {method!r} (task {task}, k {k})")
    matrix = rows.groupby(["lang_a", "lang_b"])["cosine"].mean().unstack("lang_b")
    present = set(matrix.index) | set(matrix.columns)
    if order is None:
        tasks = rows["task"].unique()
        listed = [lang for lang in TASK_LANGUAGES.get(tasks[0], ()) if lang in present] if len(tasks) == 1 else []
        order = listed + [lang for lang in pd.unique(rows["lang_a"]) if lang not in listed]
    order = family_order([lang for lang in order if lang in present])
    matrix = matrix.reindex(index=order, columns=order)
    matrix.index.name, matrix.columns.name = "lang_a", "lang_b"
    return matrix


def available_matrices(table: pd.DataFrame, methods, task: str | None = None, k: int | None = None,
                       model: str | None = None) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """`similarity_matrix` of each method of `methods` that has similarities (of `task`, at K=`k`, of `model`
    when given), and the methods that have none: Figure 1 shows what was recorded and says what was not."""
    if model is not None:
        table = table[table["model"].map(str) == str(model)]
    matrices, missing = {}, []
    for method in methods:
        chosen = (table["method"] == method) & ((table["task"] == task) if task is not None else True) & \
            ((table["k"] == k) if k is not None else True)
        if table[chosen].empty:
            missing.append(method)
        else:
            matrices[method] = similarity_matrix(table, method, task, k)
    return matrices, missing


def conflict_share(matrix: pd.DataFrame) -> float:
    """Share of the off-diagonal language pairs whose gradients conflict (negative cosine)."""
    values = matrix.to_numpy(dtype=float)
    pairs = values[~np.eye(len(values), dtype=bool) & ~np.isnan(values)]
    return float((pairs < 0).mean()) if len(pairs) else float("nan")
