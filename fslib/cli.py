"""The `fslib` command line: `fslib batch`, `fslib status`, `fslib demo`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from fslib.executors import EXECUTORS
from fslib.processes import OutputFolderBusy

MINI_PARAMS = sorted(str(path) for path in (Path(__file__).resolve().parent.parent / "params" / "mini").glob("*.yaml"))


def batch(args: argparse.Namespace) -> int:
    from fslib.batch import run_batch

    # SIGTERM (kill, a cluster's time limit) and SIGHUP (the terminal closed) unwind like Ctrl-C, so the running
    # jobs are stopped too
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    return run_batch(args.params, executor_name=args.executor, jobs=args.jobs, dry_run=args.dry_run,
                     reports=not args.no_reports)


def status(args: argparse.Namespace) -> int:
    from fslib.batch import status_report

    print(status_report(args.params))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fslib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("batch", help="run the grids of parameter files (resumes; failed runs are retried)")
    run.add_argument("params", nargs="+", help="parameter files (params/paper/*.yaml, params/mini/*.yaml)")
    run.add_argument("--executor", default="local", choices=list(EXECUTORS))
    run.add_argument("--jobs", type=int, default=1, help="local: runs at a time (one GPU each where there are GPUs)")
    run.add_argument("--dry-run", action="store_true", help="print the runs, what is done and what is reused")
    run.add_argument("--no-reports", action="store_true", help="skip the analysis notebooks")
    run.set_defaults(handler=batch)
    show = commands.add_parser("status", help="done, running, failed and pending runs of parameter files")
    show.add_argument("params", nargs="+")
    show.set_defaults(handler=status)
    demo = commands.add_parser("demo", help="the mini grid of all four tasks and the analyses, offline (CPU)")
    demo.add_argument("--jobs", type=int, default=2)
    demo.set_defaults(handler=lambda args: batch(argparse.Namespace(
        params=MINI_PARAMS, executor="local", jobs=args.jobs, dry_run=False, no_reports=False)))
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ValueError as error:  # bad parameter files and configurations: the message says what and where
        print(f"fslib: error: {error}", file=sys.stderr)
        return 2
    except OutputFolderBusy as error:  # another batch writes the output folder: the message names it
        print(f"fslib: error: {error}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
