"""`fslib batch`: expand parameter files into runs, skip what is done, train the shared source models first, run
the rest through an executor, record failures and go on, then build the reports.

A run is done when its folder holds results.csv and a config.json with the same config hash (fslib.store.status
reads that state, fslib.store.run_files writes it); so a batch that was interrupted (or edited) and started again
runs exactly the missing (or changed) runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from fslib.batch.executors import job_alive, make_executor
from fslib.batch.params import load_params
from fslib.batch.processes import hold_output_folders
from fslib.core.methods import METHODS
from fslib.formats.errors import DataError
from fslib.store.config import RunConfig, run_dir
from fslib.store.failures import clear_failure, failure, record_failure
from fslib.store.jobs import RUN_LOG, Job
from fslib.store.migration import legacy_notice
from fslib.store.run_files import corruption
from fslib.store.source_models import source_model_done, source_model_folder
from fslib.store.status import STATUSES, run_status


@dataclass
class PlannedRun:
    config: RunConfig
    status: str  # done | running | failed | pending | changed (results of another configuration: rerun)

    @property
    def folder(self) -> Path:
        return run_dir(self.config)


def _absolute(config: RunConfig) -> RunConfig:
    """Paths resolved against the working directory, so that kernels and cluster jobs started elsewhere find them
    (a model name that is not a local folder stays a hub name)."""
    return replace(config, output_dir=str(Path(config.output_dir).resolve()),
                   data_dir=str(Path(config.data_dir).resolve()) if config.data_dir else None,
                   model=str(Path(config.model).resolve()) if Path(config.model).exists() else config.model)


def plan(param_files: list[Path | str], prepare: bool = True) -> tuple[list[PlannedRun], list]:
    """Validate every file (nothing runs if one is wrong), prepare the offline benchmark or the encoder where
    asked, and list the runs with their status. Returns (runs, the BatchParams)."""
    batches = [load_params(path) for path in param_files]
    if prepare and any(batch.prepare == "offline" for batch in batches):
        from fslib.prepare.mini.model import prepare_offline  # torch: only where a file asks for the demo

        for data_dir, model in {(run.data_dir, run.model) for batch in batches if batch.prepare for run in batch.runs}:
            prepare_offline(Path(data_dir), Path(model))
    if prepare and any(batch.prepare == "encoder" for batch in batches):
        from fslib.prepare.offline_encoder import prepare_encoder  # torch: only where a file asks for the encoder

        wanted: dict[tuple[str, str, str], set[str]] = {}  # (model, folder, source) -> the languages of its runs
        treebanks: dict[tuple[str, str, str], dict] = {}
        for run in (run for batch in batches if batch.prepare == "encoder" for run in batch.runs):
            wanted.setdefault((run.model, run.data_dir, run.source), set()).update(run.languages or [])
            treebanks.setdefault((run.model, run.data_dir, run.source), {}).update(run.ud_treebanks or {})
        for (model, data_dir, source), languages in wanted.items():
            prepare_encoder(Path(model), Path(data_dir), sorted(languages), treebanks[(model, data_dir, source)],
                            source=source)
    runs, seen = [], set()
    for batch in batches:
        for config in batch.runs:
            config = _absolute(config)
            if config.run_id not in seen:
                seen.add(config.run_id)
                runs.append(PlannedRun(config, run_status(config, job_alive)))
    return runs, batches


def _source_folder(config: RunConfig) -> Path | None:
    """The source model folder a run needs; None when its data cannot be found (the run will fail and say so)."""
    try:
        return source_model_folder(config)
    except DataError:
        return None


def _uses_source_model(config: RunConfig) -> bool:
    return METHODS[config.method].uses_source_model  # plain data: no torch to plan a batch


def source_jobs(runs: list[PlannedRun]) -> tuple[list[Job], list[Path]]:
    """One source-training job per missing source model that a runnable run needs; and the models reused."""
    jobs, reused, seen = [], [], set()
    for run in runs:
        if run.status == "done" or not _uses_source_model(run.config):
            continue
        folder = _source_folder(run.config)
        if folder is None or folder in seen:
            continue
        seen.add(folder)
        if source_model_done(folder):
            reused.append(folder)
        else:
            jobs.append(Job("source", run.config.to_dict(), folder, folder.with_name(folder.name + ".log"),
                            f"source model {folder.name}"))
    return jobs, reused


def describe(runs: list[PlannedRun], sources: list[Job], reused: list[Path]) -> str:
    counts = Counter(run.status for run in runs)
    lines = [f"{len(runs)} runs: " + ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])]
    for run in runs:
        lines.append(f"  [{run.status:>7}] {run.config.run_id}  {run.folder}")
        if run.status == "corrupt":  # which file, and what is wrong with it: the run goes again
            lines.append(f"            {corruption(run.folder)}")
    lines.append(f"source models: {len(sources)} to train, {len(reused)} reused")
    lines += [f"  [  train] {job.name}" for job in sources] + [f"  [ reuse] {folder.name}" for folder in reused]
    lines += legacy_notice(run.config.output_dir for run in runs)
    return "\n".join(lines)


def status_report(param_files: list[Path | str]) -> str:
    """Done, failed, pending (and changed) runs of parameter files, with where each run lives."""
    runs, _ = plan(param_files, prepare=False)
    sources, reused = source_jobs(runs)
    return describe(runs, sources, reused)


def output_folders(param_files: list[Path | str]) -> list[Path]:
    return sorted({Path(run.output_dir).resolve() for path in param_files for run in load_params(path).runs})


def run_batch(param_files: list[Path | str], *, executor_name: str = "local", jobs: int = 1, dry_run: bool = False,
              reports: bool = True, pilot: str | None = None) -> int:
    """Run every missing run of the parameter files; returns the exit status (1 if any run failed). Holds the lock
    of every output folder it writes (fslib.batch.processes.hold_output_folders): a second batch on one of them raises
    OutputFolderBusy, naming the first; a dry run reads only and takes no lock."""
    if dry_run:
        return _run_batch(param_files, executor_name=executor_name, jobs=jobs, dry_run=True, reports=reports,
                          pilot=pilot)
    with hold_output_folders(output_folders(param_files)):
        return _run_batch(param_files, executor_name=executor_name, jobs=jobs, dry_run=False, reports=reports)


def _run_batch(param_files: list[Path | str], *, executor_name: str, jobs: int, dry_run: bool, reports: bool,
               pilot: str | None = None) -> int:
    runs, batches = plan(param_files, prepare=not dry_run)  # a dry run writes nothing: no benchmark, no encoder
    sources, reused = source_jobs(runs)
    print(describe(runs, sources, reused))
    from fslib.batch.preflight import check_data  # every data file the runs to do read, before anything trains

    to_read = [run.config for run in runs if run.status not in ("done", "running")]
    if dry_run:  # data that `prepare: offline` writes is not there yet: nothing to read
        generated = {Path(run.data_dir).resolve() for batch in batches if batch.prepare == "offline"
                     for run in batch.runs if not Path(run.data_dir).exists()}
        to_read = [config for config in to_read if Path(config.data_dir or "").resolve() not in generated]
        print("".join(f"offline benchmark at {folder}: written by the batch, not by a dry run\n"
                      for folder in sorted(generated)), end="")
    data_ok = check_data(to_read, stop=not dry_run)
    if dry_run:
        from fslib.batch.cost import dry_run_report

        print(dry_run_report(param_files, [run.config for run in runs],
                             [run.config for run in runs if run.status not in ("done", "running")]))
        from fslib.analysis.power import power_report

        print(power_report([run.config for run in runs], pilot))
        return 0 if data_ok else 2
    cluster = next((batch.cluster for batch in batches if batch.cluster), {})
    output_dir = Path(runs[0].config.output_dir) if runs else Path("outputs")
    executor = make_executor(executor_name, jobs, cluster, output_dir)

    failed_sources = {outcome.job.folder: outcome.log for outcome in executor.run_jobs(sources, "source models")
                      if not outcome.ok}
    todo = [run for run in runs if run.status not in ("done", "running")]  # running: in another batch
    run_jobs, failures = [], 0
    for run in todo:
        if _uses_source_model(run.config):
            folder = _source_folder(run.config)
            if folder is None or folder in failed_sources:
                why = (f"its source model failed to train; log: {failed_sources[folder]}" if folder
                       else "the source language's data cannot be found (see fslib.data.load_split)")
                record_failure(run.folder, run.config, why, None)
                failures += 1
                continue
        clear_failure(run.folder)  # from here on, a failure record is this attempt's
        run_jobs.append(Job("run", run.config.to_dict(), run.folder, run.folder / RUN_LOG, run.config.run_id))
    skipped = 0
    for outcome in executor.run_jobs(run_jobs, "runs"):
        skipped += outcome.skipped is not None  # done or running elsewhere by the time its turn came
        if not outcome.ok:
            failures += 1
            if failure(outcome.job.folder) is None:  # the job died before it could say why: killed, cancelled
                record_failure(outcome.job.folder, RunConfig(**outcome.job.config), outcome.error, log=outcome.log)
    builds = []
    if reports:
        from fslib.analysis.reports import build_reports, report_summary

        builds = [build_reports(output_dir, jobs=jobs)
                  for output_dir in sorted({Path(run.config.output_dir) for run in runs})]
    done_before = len(runs) - len(todo)
    print(f"{done_before} runs were already done, {len(todo) - failures - skipped} ran now, {failures} failed"
          + (f", {skipped} skipped (done or running in another batch by their turn)" if skipped else "")
          if todo else f"all {len(runs)} runs already done")
    for build in builds:  # last, so that the path (and any failed report) is what a user sees when the batch ends
        print(report_summary(build))
    return 1 if failures or any(not build.ok for build in builds) else 0
