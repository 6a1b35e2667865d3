"""Where a grid's wall time goes: parameter files run as `fslib batch` runs them (worker processes, papermill
kernels, the task notebooks, the reports), into a scratch folder, with every piece timed.

    .venv/bin/python bench/grid_time.py params/mini/pos.yaml --scratch /tmp/grid-time --label before

Per job: its process's wall time (start to exit, recorded around the executor's subprocess); per run, from the
executed notebook, papermill's per-cell durations (imports, data overview, run_experiment, tables and figures);
inside run_experiment and source-training, the run's own phases from timings.json (load data, tokenise, train,
evaluate, load model; see fslib.core.timing). The rest of a job's wall time is the process, the kernel and papermill.
Fixed cost = everything but the `train` and `evaluate` phases. The datasets cache (HF_DATASETS_CACHE) is a fresh
folder under the scratch folder unless --warm-cache, so a run starts from what a fresh machine has.

Writes bench/results/grid_time-<label>.json: the machine, library versions, every timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict:
    import datasets
    import torch
    import transformers

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "datasets": datasets.__version__,
            "cpu_count": os.cpu_count(), "cpu": cpu, "load_average_at_start": list(os.getloadavg())}


def notebook_cells(path: Path) -> dict:
    """Papermill's timing of an executed notebook: its whole duration and each code cell's, by first line."""
    notebook = json.loads(path.read_text())
    cells = []
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("papermill", {})
        if cell["cell_type"] == "code" and meta.get("duration") is not None:
            source = "".join(cell["source"]).strip().splitlines()
            tags = cell.get("metadata", {}).get("tags", [])
            cells.append({"cell": "injected-parameters" if "injected-parameters" in tags else
                          next((line for line in source if not line.startswith(("%", "#"))), ""),
                          "seconds": round(meta["duration"], 3)})
    return {"notebook_seconds": round(notebook["metadata"]["papermill"]["duration"], 3), "cells": cells}


START_UP = ("process, kernel start, papermill", "notebook import cell", "load data", "tokenise", "load model")


def summarise(info: dict) -> None:
    """Add the summary to `info`: process-seconds by what they were spent on (jobs run side by side, so they add up
    to more than the batch's wall time), and two shares of the wall time: `fixed_share_of_wall`, everything but
    training and evaluation (the jobs' train and evaluate seconds over --jobs); `start_up_share_of_wall`, the
    start-up alone (processes, kernels, papermill, imports, loading data and models, tokenising, over --jobs) and
    the reports."""
    spent = {"train": 0.0, "evaluate": 0.0, "tokenise": 0.0, "load data": 0.0, "load model": 0.0,
             "run_experiment other (tokenizer, diagnostics, writing)": 0.0, "notebook import cell": 0.0,
             "notebook cells other than run_experiment and imports (data overview, figures, views)": 0.0,
             "process, kernel start, papermill": 0.0}
    for job in info["jobs"]:
        phases = job["phases"]
        for phase in ("train", "evaluate", "tokenise", "load data", "load model"):
            spent[phase] += phases.get(phase, 0.0)
        inside = sum(value for key, value in phases.items() if key != "run_experiment")
        if job["kind"] == "run":
            cells = job.get("cells", [])
            run_cell = next((c["seconds"] for c in cells if c["cell"].startswith("rows = run_experiment")), 0.0)
            imports = next((c["seconds"] for c in cells if c["cell"].startswith("from fslib.analysis.notebook import")), 0.0)
            in_cells = sum(c["seconds"] for c in cells)
            spent["run_experiment other (tokenizer, diagnostics, writing)"] += phases.get("run_experiment", run_cell) - inside
            spent["notebook import cell"] += imports
            spent["notebook cells other than run_experiment and imports (data overview, figures, views)"] += (
                in_cells - run_cell - imports)
            spent["process, kernel start, papermill"] += job["process_seconds"] - in_cells
        else:
            spent["process, kernel start, papermill"] += job["process_seconds"] - inside
    total, jobs, wall = sum(spent.values()), info["jobs_at_once"], info["wall_seconds"]
    info["process_seconds_by_phase"] = {key: round(value, 2) for key, value in spent.items()}
    info["fixed_share_of_job_seconds"] = round(1 - (spent["train"] + spent["evaluate"]) / total, 4)
    info["fixed_share_of_wall"] = round(1 - (spent["train"] + spent["evaluate"]) / jobs / wall, 4)
    info["start_up_share_of_wall"] = round((sum(spent[key] for key in START_UP) / jobs + info["reports_seconds"])
                                           / wall, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("params", nargs="+", help="parameter files (mini grids: prepare: offline)")
    parser.add_argument("--scratch", default="/tmp/fslib-grid-time")
    parser.add_argument("--label", default="run")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--warm-cache", action="store_true", help="keep the datasets cache of an earlier run")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    scratch = Path(args.scratch).resolve()
    shared = scratch / "shared"  # the offline benchmark and the tiny model, made once for every label
    output_dir = scratch / args.label
    shutil.rmtree(output_dir, ignore_errors=True)
    cache = scratch / "hf-datasets-cache" if args.warm_cache else output_dir / "hf-datasets-cache"
    os.environ["HF_DATASETS_CACHE"] = str(cache)  # before datasets is imported, here and in every job
    output_dir.mkdir(parents=True)
    params_files, report_dirs = [], []
    for name in args.params:  # each file's output folder moves under the label's folder, keeping its place
        params = yaml.safe_load(Path(name).read_text())
        report_dir = output_dir / params["defaults"].get("output_dir", "outputs")
        params["defaults"].update(output_dir=str(report_dir), data_dir=str(shared / "data"),
                                  model=str(shared / "tiny-xlmr"))
        params_files.append(output_dir / Path(name).name)
        params_files[-1].write_text(yaml.safe_dump(params))
        if report_dir not in report_dirs:
            report_dirs.append(report_dir)

    from fslib.analysis.reports import build_reports
    from fslib.batch import executors
    from fslib.batch.planning import run_batch
    from fslib.prepare.mini.model import prepare_offline

    info = {"benchmark": "grid_time", "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine(), "params": args.params, "jobs_at_once": args.jobs, "label": args.label,
            "warm_datasets_cache": args.warm_cache}
    started = time.perf_counter()
    prepare_offline(shared / "data", shared / "tiny-xlmr")
    info["prepare_seconds"] = round(time.perf_counter() - started, 3)  # once per machine: not part of a grid

    jobs: dict[str, dict] = {}
    run_one = executors.LocalExecutor._run_one

    def timed_run_one(self, job, slots):
        begin = time.perf_counter()
        outcome = run_one(self, job, slots)
        jobs[str(job.folder)] = {"kind": job.kind, "name": job.name, "ok": outcome.ok,
                                 "start": round(begin - started, 3),
                                 "process_seconds": round(time.perf_counter() - begin, 3)}
        return outcome

    executors.LocalExecutor._run_one = timed_run_one
    started = time.perf_counter()
    status = run_batch(params_files, jobs=args.jobs, reports=False)
    info["batch_seconds"] = round(time.perf_counter() - started, 3)
    begin = time.perf_counter()
    for report_dir in report_dirs:
        build_reports(report_dir, jobs=args.jobs)
    info["reports_seconds"] = round(time.perf_counter() - begin, 3)
    info["wall_seconds"] = round(info["batch_seconds"] + info["reports_seconds"], 3)
    info["exit_status"] = status

    for folder, job in jobs.items():
        folder = Path(folder)
        timings = folder / "timings.json"
        job["phases"] = json.loads(timings.read_text()) if timings.exists() else {}
        if job["kind"] == "run":
            notebook = next(folder.glob("*.ipynb"), None)
            if notebook:
                job.update(notebook_cells(notebook))
    info["jobs"] = list(jobs.values())

    summarise(info)
    out = Path(args.out or ROOT / "bench" / "results" / f"grid_time-{args.label}.json")
    temporary = out.with_suffix(".tmp")
    temporary.write_text(json.dumps(info, indent=1) + "\n")
    temporary.rename(out)
    print(json.dumps({key: info[key] for key in ("prepare_seconds", "batch_seconds", "reports_seconds", "wall_seconds",
                                                 "process_seconds_by_phase", "fixed_share_of_job_seconds",
                                                 "fixed_share_of_wall", "start_up_share_of_wall")}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
