"""The surgeons side by side (notebooks/aggregators.ipynb): each gradient-co-train variant (a run's `surgeon`,
fslib.engine.surgeons) against naive co-training and the paper's stochastic surgery, with the calibrated
comparisons of `fslib.analysis.tables.compare_methods`, what each costs (training seconds per run from its
timings.json, extra passes per step from its surgery.csv) and per-language gains.

Assumes the runs' folders (config.json, timings.json, surgery.csv beside results.csv) are under `runs_dir`, and
that each surgeon's runs carry a method label of their own (params/mini/aggregators.yaml: `label: gradvac`, ...),
so that the result rows tell them apart; the paper's surgery is `gradient-co-train`, the baseline
`naive-co-train`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from fslib.analysis.significance import holm
from fslib.analysis.tables import compare_methods, headline_test_rows
from fslib.core.containment import files_named
from fslib.core.languages import SOURCE_LANG
from fslib.core.surgeons import DEFAULT_SURGEON
from fslib.store.ledger import TIMINGS_FILE
from fslib.store.results import CONFIG_FILE

NAIVE, PAPER = "naive-co-train", "gradient-co-train"
RUN_COLUMNS = ["task", "method", "model", "k", "seed", "surgeon", "train_seconds", "steps", "oracle_passes",
               "language_passes", "conflict_rate", "mean_cosine"]
SURGERY_FILE = "surgery.csv"


def load_surgeon_runs(runs_dir: Path | str, model: str | None = None) -> pd.DataFrame:
    """One row per co-training run under `runs_dir`: task, method label, model, k, seed, surgeon ("none" for
    naive co-training), training seconds, optimiser steps, oracle and per-language passes, and the conflict rate
    and mean cosine its surgeon recorded (averaged over epochs). `runs_dir` may also be a CSV of these rows (what
    results/aggregators-mini ships); with `model`, only that model's runs."""
    path = Path(runs_dir)
    if path.is_file():
        runs = pd.read_csv(path)
        missing = [column for column in RUN_COLUMNS if column not in runs.columns]
        if missing:
            raise ValueError(f"{path}: not a table of surgeon runs, no column {', '.join(missing)}")
        return runs[runs["model"].map(str) == str(model)] if model is not None else runs
    out = []
    for config_file in sorted(files_named(path, CONFIG_FILE)):
        config = json.loads(config_file.read_text())
        if config["method"] not in (NAIVE, PAPER):
            continue
        folder = config_file.parent
        timings = folder / TIMINGS_FILE
        seconds = json.loads(timings.read_text()).get("train") if timings.exists() else None
        if model is not None and str(config.get("model")) != str(model):
            continue
        row = {"task": config["task"], "method": config.get("method_label") or config["method"],
               "model": config.get("model"), "k": config["k"],
               "seed": config["seed"], "surgeon": config.get("surgeon", DEFAULT_SURGEON) if config["method"] == PAPER
               else "none", "train_seconds": seconds}
        surgery = folder / SURGERY_FILE
        if surgery.exists():
            log = pd.read_csv(surgery)
            row["steps"] = int(log["step"].max())
            # a per-language surgeon's oracle_<lang> columns count the targets it saw in a step, not passes
            language = "language_passes" in log
            row["oracle_passes"] = 0.0 if language else float(log.filter(like="oracle_").to_numpy().sum())
            row["language_passes"] = float(log["language_passes"].sum()) if language else 0.0
            row["conflict_rate"] = float(log["conflict_rate"].mean())
            row["mean_cosine"] = float(log["mean_cosine"].mean())
        out.append(row)
    return pd.DataFrame(out, columns=RUN_COLUMNS)


def surgeon_variant_ks(runs_dir: Path, task: str) -> list[int]:
    """The K values at which `task` has gradient-co-train runs with a surgeon other than the paper's (the
    report index plans an aggregators report for them)."""
    ks = set()
    for config_file in files_named(runs_dir / task, CONFIG_FILE) if (runs_dir / task).is_dir() else []:
        config = json.loads(config_file.read_text())
        if config["method"] == PAPER and config.get("surgeon", DEFAULT_SURGEON) != DEFAULT_SURGEON:
            ks.add(config["k"])
    return sorted(ks)


def surgeon_methods(runs: pd.DataFrame, task: str, k: int) -> list[str]:
    """The gradient-co-train labels of (task, k): the paper's surgery first, then the others by name."""
    labels = set(runs[(runs["task"] == task) & (runs["k"] == k) & (runs["surgeon"] != "none")]["method"])
    return [PAPER] * (PAPER in labels) + sorted(labels - {PAPER})


def run_costs(runs: pd.DataFrame, task: str, k: int) -> pd.DataFrame:
    """Per method label of (task, k): the surgeon, mean training seconds per run, that relative to naive
    co-training's, extra passes per optimiser step (oracle + per-language), conflict rate and mean cosine."""
    rows = runs[(runs["task"] == task) & (runs["k"] == k)]
    if rows.empty:
        raise ValueError(f"no co-training runs of task {task!r} at K={k} in the runs' folders")
    grouped = rows.groupby("method").agg(surgeon=("surgeon", "first"), runs=("seed", "nunique"),
                                         train_seconds=("train_seconds", "mean"), steps=("steps", "mean"),
                                         oracle_passes=("oracle_passes", "mean"),
                                         language_passes=("language_passes", "mean"),
                                         conflict_rate=("conflict_rate", "mean"), mean_cosine=("mean_cosine", "mean"))
    naive = grouped["train_seconds"].get(NAIVE)
    grouped["time_vs_naive"] = grouped["train_seconds"] / naive if naive else float("nan")
    grouped["extra_passes_per_step"] = (grouped["oracle_passes"].fillna(0) + grouped["language_passes"].fillna(0)) \
        / grouped["steps"]
    return grouped


def surgeon_comparison(results: pd.DataFrame, runs: pd.DataFrame, task: str, k: int,
                       baselines: tuple[str, ...] = (NAIVE, PAPER), alpha: float = 0.05) -> pd.DataFrame:
    """Every surgeon's label against each baseline (`compare_methods`: mean difference over target languages with
    its calibrated 95% interval and p-value), Holm-corrected over the table (`p_holm`, `significant`), with its
    cost columns from `run_costs`."""
    costs = run_costs(runs, task, k)
    present = set(headline_test_rows(results, task)["method"])
    frames = [compare_methods(results, task, k, method=method, baseline=baseline)
              for baseline in baselines if baseline in present
              for method in surgeon_methods(runs, task, k) if method != baseline and method in present]
    if not frames:
        raise ValueError(f"no surgeon with test results beside {' or '.join(baselines)} for {task} at K={k}")
    table = pd.concat(frames, ignore_index=True)
    table["p_holm"] = holm(table["p_value"])
    table["significant"] = table["p_holm"] < alpha
    return table.join(costs[["surgeon", "time_vs_naive", "extra_passes_per_step", "conflict_rate"]], on="method")


def per_language_gains(results: pd.DataFrame, task: str, k: int, methods: list[str],
                       baseline: str = NAIVE) -> pd.DataFrame:
    """Target languages x methods: the method's test score minus the baseline's (means over seeds), in points."""
    rows = headline_test_rows(results, task)
    rows = rows[(rows["k"] == k) & (rows["lang"] != SOURCE_LANG)]
    means = rows.groupby(["method", "lang"])["value"].mean().unstack("method")
    if baseline not in means:
        raise ValueError(f"no test results of {baseline!r} for {task} at K={k}")
    return pd.DataFrame({method: means[method] - means[baseline] for method in methods if method in means})


def plot_cost_gain(comparison: pd.DataFrame, baseline: str = NAIVE, title: str | None = None) -> Figure:
    """Each surgeon's gain over `baseline` (with its 95% interval) against its training time relative to naive
    co-training."""
    rows = comparison[comparison["baseline"] == baseline]
    figure = Figure(figsize=(6, 4))
    ax = figure.subplots()
    ax.errorbar(rows["time_vs_naive"], rows["delta"], yerr=[rows["delta"] - rows["ci_low"],
                                                             rows["ci_high"] - rows["delta"]],
                fmt="o", capsize=3, color="#d62728")
    for _, row in rows.iterrows():
        ax.annotate(row["method"], (row["time_vs_naive"], row["delta"]), textcoords="offset points", xytext=(5, 5),
                    fontsize="small")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("training time relative to naive co-training")
    ax.set_ylabel(f"Δ vs {baseline} (points, 95% CI)")
    if title:
        ax.set_title(title)
    figure.tight_layout()
    return figure
