"""One call runs one experiment: `run_experiment(RunConfig(...))` trains what the method trains, evaluates every
language, and writes the run's folder (through fslib.store.run_files: config.json, extra tables and results.csv as
one set, its manifest last; a rerun replaces the old set only once the new one is complete)."""

from __future__ import annotations

import shutil
import time

import pandas as pd

from fslib.engine.checkpoint import CHECKPOINT_DIR
from fslib.engine.methods import get_method
from fslib.engine.provenance import run_provenance
from fslib.engine.stages import Experiment
from fslib.store.config import RunConfig, model_name, run_dir
from fslib.store.results import rows_frame
from fslib.store.run_files import write_run


def run_experiment(config: RunConfig) -> pd.DataFrame:
    """Run one experiment and return its result rows (also written under `run_dir(config)`)."""
    started = time.perf_counter()
    experiment = Experiment(config)
    c = experiment.config
    get_method(c.method).train_and_evaluate(experiment)
    timings = {**experiment.timer.as_dict(), "run_experiment": round(time.perf_counter() - started, 3)}
    frame = rows_frame(experiment.rows, task=c.task, method=c.label, model=model_name(c.model), k=c.k, seed=c.seed,
                       run_id=c.run_id, config_hash=c.config_hash)
    provenance = run_provenance(c, experiment.device, list(experiment.loaded_examples))
    write_run(run_dir(c), c, frame, experiment.tables, experiment.predictions, timings, provenance)
    shutil.rmtree(run_dir(c) / CHECKPOINT_DIR, ignore_errors=True)  # the run is complete: nothing to resume
    return frame


__all__ = ["run_dir", "run_experiment"]
