"""One call runs one experiment: `run_experiment(RunConfig(...))` trains what the method trains, evaluates every
language, and writes the run's folder (config.json, extra tables, and results.csv last, atomically)."""

from __future__ import annotations

import json
import time

import pandas as pd

from fslib.config import RunConfig, run_dir
from fslib.files import write_atomic
from fslib.methods import METHODS
from fslib.results import CONFIG_FILE, rows_frame, write_results
from fslib.stages import Run


TIMINGS_FILE = "timings.json"


def run_experiment(config: RunConfig) -> pd.DataFrame:
    """Run one experiment and return its result rows (also written under `run_dir(config)`)."""
    started = time.perf_counter()
    run = Run(config)
    c = run.config
    METHODS[c.method].run(run)
    timings = {**run.timer.as_dict(), "run_experiment": round(time.perf_counter() - started, 3)}
    frame = rows_frame(run.rows, task=c.task, method=c.label, k=c.k, seed=c.seed, run_id=c.run_id,
                       config_hash=c.config_hash)
    folder = run_dir(c)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):  # a rerun replaces the old rows and tables, which a new config may not make
        old.unlink()
    write_atomic(folder / CONFIG_FILE, lambda temporary: c.save(temporary))
    for name, table in run.tables.items():
        write_atomic(folder / f"{name}.csv", lambda temporary, table=table: table.to_csv(temporary, index=False))
    (folder / TIMINGS_FILE).write_text(json.dumps(timings, indent=1) + "\n")  # where the time went (seconds)
    write_results(folder, frame)
    return frame


__all__ = ["run_dir", "run_experiment"]
