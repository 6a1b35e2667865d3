"""Result rows: one tidy row per measurement, one CSV file per run, written atomically.

Columns: task, method, k, seed, lang, split, metric, value (0-100), epoch, step, run_id, config_hash.
`split` is "test" for a run's final scores, "dev" for per-epoch dev curves (source and target dev sets) and
"test-curve" for per-epoch test scores (only with `test_curves`). A run's folder holds `results.csv` (its
rows), `config.json` (its RunConfig) and possibly `surgery.csv` and `gradient_similarity.csv`; fslib.ledger
writes them, the rows file last, through a temporary file and a rename, so a folder with `results.csv` is a
finished run and a failed or interrupted run never leaves rows that look valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

COLUMNS = ["task", "method", "k", "seed", "lang", "split", "metric", "value", "epoch", "step", "run_id",
           "config_hash"]
RESULTS_FILE = "results.csv"
CONFIG_FILE = "config.json"


@dataclass
class Row:
    lang: str
    split: str
    metric: str
    value: float
    epoch: int | None = None
    step: int | None = None


def rows_frame(rows: list[Row], *, task: str, method: str, k: int, seed: int, run_id: str,
               config_hash: str) -> pd.DataFrame:
    frame = pd.DataFrame([vars(row) for row in rows], columns=["lang", "split", "metric", "value", "epoch", "step"])
    for column, value in {"task": task, "method": method, "k": k, "seed": seed, "run_id": run_id,
                          "config_hash": config_hash}.items():
        frame[column] = value
    frame[["epoch", "step"]] = frame[["epoch", "step"]].astype("Int64")
    return frame[COLUMNS]


def load_results(path: Path | str) -> pd.DataFrame:
    """Every run's rows under `path` (a run folder, a folder of runs, or one results file) as one DataFrame."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.rglob(RESULTS_FILE))
    frames = [pd.read_csv(file, dtype={"lang": str, "run_id": str, "config_hash": str}) for file in files]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.concat(frames, ignore_index=True)
    frame[["epoch", "step"]] = frame[["epoch", "step"]].astype("Int64")
    return frame
