"""The jobs of a batch, run in processes of their own: a source-training, or a run executed as a papermill run of
its task notebook into its run folder. A Slurm job runs one job (`python -m fslib.batch.worker JOB`, through
`execute`); a local batch's worker runs one job after another (`python -m fslib.batch.worker --serve`, see `serve`), its
runs' notebooks in one kernel (fslib.core.execution.KernelSession).

A failed run leaves its executed notebook (with the error in it) and a FAILED file saying what happened; it never
leaves result rows of its own: the notebook writes them atomically once training and evaluation are done, and a
failure of any later cell puts back the results it replaced (fslib.store.run_files.discard_results).

Started by the local executor, a worker dies with its batch: it asks for SIGTERM when the batch dies
(FSLIB_BATCH_PID, fslib.batch.processes.die_with_parent), and SIGTERM, SIGHUP or SIGINT stop it like a failure (its
kernel shut down, FAILED.json written), with SIGALRM's default action to end it if that takes over
STOP_GRACE_SECONDS. A kernel whose worker is gone shuts itself down within a second (ipykernel watches its
parent: JPY_PARENT_PID).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from fslib.batch.processes import die_with_parent
from fslib.core.execution import KernelSession, execute_notebook
from fslib.core.tasks import get_task
from fslib.store.config import RunConfig, run_dir
from fslib.store.failures import clear_failure, record_failure
from fslib.store.run_files import discard_results, write_timings

STOP_GRACE_SECONDS = 15
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Stopped(SystemExit):
    """The worker was told to stop (its batch stopped or died). A SystemExit, so that asyncio (papermill's kernel
    client) lets it through instead of logging it."""


def _stop(signum: int, frame) -> None:
    for sig in STOP_SIGNALS:  # one stop is enough (the batch follows SIGINT with SIGTERM); not SIG_IGN: Python
        signal.signal(sig, lambda signum, frame: None)  # raises OSError for a signal already pending then
    signal.alarm(STOP_GRACE_SECONDS)  # if cleaning up hangs, SIGALRM ends the process
    raise Stopped(f"stopped by {signal.Signals(signum).name} (the batch was stopped or died)")


def stop_with_batch() -> None:
    """Die with the batch that started this worker (FSLIB_BATCH_PID), and stop cleanly on SIGTERM/SIGHUP/SIGINT."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop)
    if os.environ.get("FSLIB_BATCH_PID"):
        die_with_parent(int(os.environ["FSLIB_BATCH_PID"]))


# Parameters the task notebooks name in their parameters cell; every other RunConfig field goes in `extra`.
NOTEBOOK_PARAMETERS = ("task", "method", "k", "seed", "model", "source", "data_dir", "languages", "target_langs",
                       "method_label", "alpha", "epochs", "learning_rate", "train_batch_size", "target_batch_size",
                       "output_dir", "device")


def notebook_parameters(config: RunConfig) -> dict:
    values = config.to_dict()
    named = {name: values[name] for name in NOTEBOOK_PARAMETERS}
    defaults = RunConfig(task=config.task, method=config.method, k=config.k, seed=config.seed,
                         model=config.model).to_dict()
    named["extra"] = {name: value for name, value in values.items()
                      if name not in NOTEBOOK_PARAMETERS and value != defaults[name]}
    return named


def execute_run_notebook(config: RunConfig, kernel_name: str | None = None, log: Path | None = None,
                         session: KernelSession | None = None) -> Path:
    """Execute the task notebook of `config` into its run folder (in `session`'s kernel, else in a new one);
    returns the folder. A failure is recorded in the folder (with `log`, the job's log, where there is one) and
    raised again."""
    folder = run_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    clear_failure(folder)
    notebook = folder / f"{config.task}.ipynb"
    os.environ.setdefault("FSLIB_PROGRESS", "text")  # inherited by the kernel: see fslib.core.progress
    os.environ.setdefault("TQDM_MININTERVAL", "20")
    started = time.time()
    try:
        if session is None:
            execute_notebook(get_task(config.task).notebook, notebook, notebook_parameters(config), kernel_name)
        else:
            session.execute_notebook(get_task(config.task).notebook, notebook, notebook_parameters(config))
    except BaseException as error:
        discard_results(folder, since=started)  # rows this attempt wrote belong to a failed run; older ones stay
        record_failure(folder, config, f"{type(error).__name__}: {error}", notebook, started, log)
        raise
    return folder


def execute_source_training(config: RunConfig) -> Path:
    """Train (or find) the source model of `config`."""
    from fslib.engine.stages import Experiment

    experiment = Experiment(config)
    folder = experiment.source_model_dir()
    if experiment.timer.seconds["train"]:  # trained now, not found: say where the time went
        write_timings(folder, experiment.timer.as_dict())
    return folder


def execute(job: dict, session: KernelSession | None = None) -> str:
    """Run one job, {"kind": "run" | "source", "config": {...RunConfig fields...}, "log": path}: the entry point
    of every executor (local workers and Slurm jobs), a run's notebook in `session`'s kernel where there is one.
    A run that fails records it in its folder; the batch records only the failures of jobs that could not
    (killed, cancelled, out of time)."""
    config = RunConfig(**job["config"])
    if job["kind"] == "source":
        return str(execute_source_training(config))
    log = Path(job["log"]) if job.get("log") else None
    # a Slurm job's log is submitit's, elsewhere: the failure record names the executed notebook then
    return str(execute_run_notebook(config, log=log if log and log.exists() else None, session=session))


@contextlib.contextmanager
def output_to(log: Path, between: int) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2: what its children and its kernel write
    too) to `log` for the duration, and to the descriptor `between` afterwards."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as file:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(file.fileno(), 1), os.dup2(file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(between, 1), os.dup2(between, 2)


def serve() -> int:
    """Run jobs one after another until stdin ends: each is a line of JSON on stdin (as for `execute`), answered
    by one line of JSON on the stdout this process started with, {"ok": true | false}, once it is done. While a
    job runs, everything this process writes goes to the job's log. The runs' notebooks share one kernel
    (KernelSession): the imports of torch and transformers are paid once per worker, not once per run."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    between = os.dup(2)  # between jobs, output goes where stderr went: the batch's
    os.dup2(between, 1)  # nothing but replies on the replies' pipe
    with KernelSession() as session:
        for line in sys.stdin:
            job = json.loads(line)
            with output_to(Path(job["log"]), between):
                try:
                    print(execute(job, session), flush=True)
                    ok = True
                except Stopped as stopped:
                    print(f"fslib.batch.worker: {stopped}", flush=True)
                    raise
                except Exception:
                    traceback.print_exc()
                    ok = False
            replies.write(json.dumps({"ok": ok}) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run one job of an fslib batch, or a stream of them (--serve)")
    parser.add_argument("job", nargs="?", help="the job as JSON: {\"kind\": ..., \"config\": {...}}")
    parser.add_argument("--serve", action="store_true", help="run the jobs read from stdin, one JSON per line")
    args = parser.parse_args(argv)
    if args.serve == (args.job is not None):
        parser.error("give one job, or --serve")
    stop_with_batch()
    try:
        if args.serve:
            return serve()
        print(execute(json.loads(args.job)))
    except Stopped as stopped:
        print(f"fslib.batch.worker: {stopped}", flush=True)
        return 128 + signal.SIGTERM
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
