"""The `fslib` command line: `fslib batch`, `fslib status`, `fslib reports`, `fslib migrate`, `fslib demo`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from fslib.batch.executors import EXECUTORS
from fslib.batch.processes import OutputFolderBusy, hold_output_folders

MINI_PARAMS = sorted(str(path) for path in (Path(__file__).resolve().parent.parent / "params" / "mini").glob("*.yaml"))


def _unwind_on_sigterm() -> None:
    # SIGTERM (kill, a cluster's time limit) and SIGHUP (the terminal closed) unwind like Ctrl-C, so the running
    # jobs and notebooks are stopped too
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))


def batch(args: argparse.Namespace) -> int:
    from fslib.batch.planning import run_batch

    _unwind_on_sigterm()
    return run_batch(args.params, executor_name=args.executor, jobs=args.jobs, dry_run=args.dry_run,
                     reports=not args.no_reports, pilot=getattr(args, "pilot", None))


def status(args: argparse.Namespace) -> int:
    from fslib.batch.planning import status_report

    print(status_report(args.params))
    return 0


def reports(args: argparse.Namespace) -> int:
    from fslib.analysis.reports import build_reports, report_summary

    _unwind_on_sigterm()
    output_dir = Path(args.output_dir)
    if not (output_dir / "runs").is_dir():
        raise ValueError(f"{output_dir} has no runs/ folder: give the output_dir of a grid (e.g. outputs)")
    with hold_output_folders([output_dir]):  # not while a batch writes the folder: it builds them when it ends
        build = build_reports(output_dir, jobs=args.jobs, force=args.force)
    if not build.rebuilt and build.ok:
        print("results unchanged since the last build: reports not rebuilt (--force rebuilds)")
    print(report_summary(build))
    return 0 if build.ok else 1


def migrate(args: argparse.Namespace) -> int:
    from fslib.store.migration import legacy_run_folders, migrate_runs

    for output_dir in args.output_dirs:
        for line in migrate_runs(output_dir):
            print(line)
    return 1 if any(legacy_run_folders(output_dir) for output_dir in args.output_dirs) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fslib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("batch", help="run the grids of parameter files (resumes; failed runs are retried)")
    run.add_argument("params", nargs="+", help="parameter files (params/paper/*.yaml, params/mini/*.yaml)")
    run.add_argument("--executor", default="local", choices=list(EXECUTORS))
    run.add_argument("--jobs", type=int, default=1, help="local: runs at a time (one GPU each where there are GPUs)")
    run.add_argument("--dry-run", action="store_true", help="print the runs, what is done and what is reused")
    run.add_argument("--no-reports", action="store_true", help="skip the analysis notebooks")
    run.add_argument("--pilot", help="with --dry-run: an earlier results.csv whose variance components size the "
                                     "power print (default: the paper's)")
    run.set_defaults(handler=batch)
    show = commands.add_parser("status", help="done, running, failed and pending runs of parameter files")
    show.add_argument("params", nargs="+")
    show.set_defaults(handler=status)
    build = commands.add_parser("reports", help="(re)build the analysis reports of an output folder's runs")
    build.add_argument("output_dir", nargs="?", default="outputs", help="the grid's output_dir (default: outputs)")
    build.add_argument("--jobs", type=int, default=1, help="notebooks at a time")
    build.add_argument("--force", action="store_true", help="rebuild even when no result changed")
    build.set_defaults(handler=reports)
    move = commands.add_parser("migrate", help="move run folders of the layout before the config hash was part of "
                                               "a run's folder into the current one")
    move.add_argument("output_dirs", nargs="+", help="output folders (outputs, outputs/real, ...)")
    move.set_defaults(handler=migrate)
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
    except KeyboardInterrupt:  # Ctrl-C: what was running has been stopped on the way out; no traceback
        print(f"fslib {args.command}: interrupted; finished runs and the previous reports are kept",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
