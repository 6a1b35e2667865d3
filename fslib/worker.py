"""One job of a batch, run in a process of its own (a local subprocess or a Slurm job): a source-training, or a
run executed as a papermill run of its task notebook into its run folder.

A failed run leaves its executed notebook (with the error in it) and a FAILED file saying what happened; it never
leaves result rows: the notebook writes them atomically once training and evaluation are done, and a failure of
any cell removes them again.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import traceback
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import default

from fslib.config import RunConfig, run_dir
from fslib.files import write_atomic
from fslib.results import RESULTS_FILE

NOTEBOOKS = Path(os.environ.get("FSLIB_NOTEBOOKS", Path(__file__).resolve().parent.parent / "notebooks"))
FAILED_FILE = "FAILED.json"
# Parameters the task notebooks name in their parameters cell; every other RunConfig field goes in `extra`.
NOTEBOOK_PARAMETERS = ("task", "method", "k", "seed", "model", "source", "data_dir", "languages", "target_langs",
                       "method_label", "alpha", "epochs", "learning_rate", "train_batch_size", "target_batch_size",
                       "output_dir", "device")


class IPCKernelManager(AsyncKernelManager):
    """Kernels talk over Unix sockets at a fresh path instead of TCP ports, so that papermill runs started at the
    same time cannot race for the same port (the known clash of parallel papermill runs)."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    def _ip_default(self) -> str:
        return os.path.join(tempfile.gettempdir(), f"fslib-kernel-{uuid.uuid4().hex[:12]}")


def notebook_parameters(config: RunConfig) -> dict:
    values = config.to_dict()
    named = {name: values[name] for name in NOTEBOOK_PARAMETERS}
    defaults = RunConfig(task=config.task, method=config.method, k=config.k, seed=config.seed,
                         model=config.model).to_dict()
    named["extra"] = {name: value for name, value in values.items()
                      if name not in NOTEBOOK_PARAMETERS and value != defaults[name]}
    return named


def execute_run(config: RunConfig, kernel_name: str = "python3") -> Path:
    """Execute the task notebook of `config` into its run folder; returns the folder."""
    import papermill

    folder = run_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FAILED_FILE).unlink(missing_ok=True)
    notebook = folder / f"{config.task}.ipynb"
    os.environ.setdefault("FSLIB_PROGRESS", "text")  # inherited by the kernel: see fslib.progress
    os.environ.setdefault("TQDM_MININTERVAL", "20")
    started = time.time()
    try:
        papermill.execute_notebook(NOTEBOOKS / f"{config.task}.ipynb", notebook,
                                   parameters=notebook_parameters(config), kernel_name=kernel_name, cwd=NOTEBOOKS,
                                   progress_bar=False, kernel_manager_class=IPCKernelManager)
    except BaseException as error:
        # rows the notebook wrote before a later cell failed belong to a failed run: remove them
        (folder / RESULTS_FILE).unlink(missing_ok=True)
        record_failure(folder, config, f"{type(error).__name__}: {error}", notebook, started)
        raise
    return folder


def record_failure(folder: Path, config: RunConfig, error: str, notebook: Path | None, started: float | None = None,
                   log: Path | None = None) -> None:
    """Write FAILED.json: the error, where to look (executed notebook, log) and the run's config hash."""
    if len(error) > 4000:  # keep how it starts (what failed) and how it ends (the exception)
        error = f"{error[:1500]} [...] {error[-2500:]}"
    record = {"run_id": config.run_id, "config_hash": config.config_hash, "error": error,
              "notebook": str(notebook) if notebook else None, "log": str(log) if log else None,
              "seconds": round(time.time() - started, 1) if started else None}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / FAILED_FILE, lambda temporary: Path(temporary).write_text(json.dumps(record, indent=1)))


def execute_source_training(config: RunConfig) -> Path:
    """Train (or find) the source model of `config`."""
    from fslib.stages import Run

    run = Run(config)
    folder = run.source_model_dir()
    if run.timer.seconds["train"]:  # trained now, not found: say where the time went (seconds)
        (folder / "timings.json").write_text(json.dumps(run.timer.as_dict(), indent=1) + "\n")
    return folder


def execute(job: dict) -> str:
    """Run one job, {"kind": "run" | "source", "config": {...RunConfig fields...}}: the entry point of every
    executor (local subprocesses and Slurm jobs)."""
    config = RunConfig(**job["config"])
    if job["kind"] == "source":
        return str(execute_source_training(config))
    return str(execute_run(config))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run one job of an fslib batch")
    parser.add_argument("job", help="the job as JSON: {\"kind\": ..., \"config\": {...}}")
    args = parser.parse_args(argv)
    try:
        print(execute(json.loads(args.job)))
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
