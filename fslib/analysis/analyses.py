"""The analysis notebooks a batch's reports run, in one registry: for each, its notebook, what the index says of
it, and when the results support it (the parameters to run it with, or why it is left out). fslib.analysis.reports
plans and executes them; a new analysis is one `register_analysis` call (its notebook: a name under notebooks/ or
the path of an .ipynb file), in the process that builds the reports (`fslib batch`, `fslib reports`).

A plan is called with the test results (every split's rows where it needs them: `results`) and the runs' folder;
a per-task analysis once per task, with that task's rows, and its report is named `<name>_<task>`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fslib.analysis.similarity import SIMILARITY_FILE
from fslib.core.containment import files_named

# (the rows: results of every split, of one task for a per-task analysis; the runs' folder) -> parameters, or why not
Plan = Callable[[pd.DataFrame, Path], "dict | str"]
SCRIPT_STUDY_METHODS = ("gradient-single", "gradient-subset")


@dataclass(frozen=True)
class Analysis:
    name: str
    notebook: str  # a name under notebooks/, or the path of an .ipynb file
    description: str  # what the report index says of it
    plan: Plan
    per_task: bool = True


ANALYSES: dict[str, Analysis] = {}


def register_analysis(analysis: Analysis) -> Analysis:
    """Add `analysis` (a new one of the same name replaces the old); returns it."""
    if not isinstance(analysis, Analysis):
        raise TypeError(f"register_analysis takes a fslib.analysis.analyses.Analysis, got {type(analysis).__name__}")
    ANALYSES[analysis.name] = analysis
    return analysis


def preferred_k(ks) -> int:
    """The K a report shows when several were run: 5 where there, else the largest (0 when only zero-shot)."""
    ks = sorted(set(ks) - {0})
    return 5 if 5 in ks else (ks[-1] if ks else 0)


def _test(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["split"] == "test"]


def _main_results(rows: pd.DataFrame, runs_dir: Path) -> dict | str:
    return {} if not _test(rows).empty else "no test results yet"


def _language_benefit(rows: pd.DataFrame, runs_dir: Path) -> dict | str:
    test = _test(rows)
    methods = set(test["method"])
    if {"gradient-co-train", "ord-FS"} <= methods:
        return {"k": preferred_k(test[test["method"] == "gradient-co-train"]["k"])}
    absent = " and ".join(m for m in ("gradient-co-train", "ord-FS") if m not in methods)
    return f"compares gradient-co-train with ord-FS; no test results of {absent}"


def _gradient_heatmap(rows: pd.DataFrame, runs_dir: Path) -> dict | str:
    task = rows["task"].iloc[0]
    recorded = ({path.relative_to(runs_dir).parts[0] for path in files_named(runs_dir, SIMILARITY_FILE)}
                if runs_dir.is_dir() else set())
    if task in recorded:
        return {"k": preferred_k(_test(rows)["k"])}
    return "no run recorded gradient similarities (gradient_similarity: true in the grid)"


def _script_study(rows: pd.DataFrame, runs_dir: Path) -> dict | str:
    test = _test(rows)
    if set(test["method"]) & set(SCRIPT_STUDY_METHODS):
        return {"k": preferred_k(test[test["method"].isin(SCRIPT_STUDY_METHODS)]["k"])}
    return "no gradient-single or gradient-subset runs (the script study's grids)"


def _aggregators(rows: pd.DataFrame, runs_dir: Path) -> dict | str:
    from fslib.analysis.aggregators import surgeon_variant_ks

    if ks := surgeon_variant_ks(runs_dir, rows["task"].iloc[0]):
        return {"k": preferred_k(ks)}
    return "no gradient-co-train runs with another surgeon (params/mini/aggregators.yaml)"


def _overfitting_curves(rows: pd.DataFrame, runs_dir: Path) -> dict | str:
    curves = rows[(rows["method"] == "ord-FS+dev") & (rows["split"] == "dev")]
    return {"k": preferred_k(curves["k"])} if not curves.empty else "no per-epoch dev scores of ord-FS+dev"


register_analysis(Analysis("main_results", "main_results",
                           "Table 1 and the per-language tables, beside the paper's figures", _main_results,
                           per_task=False))
register_analysis(Analysis("language_benefit", "language_benefit",
                           "Δ per target language, gradient-co-train − ord-FS (Tables 2 and 8)", _language_benefit))
register_analysis(Analysis("gradient_heatmap", "gradient_heatmap",
                           "cosine similarity of per-language gradients (Figure 1)", _gradient_heatmap))
register_analysis(Analysis("script_study", "script_study",
                           "single language, same-script subsets, all languages (Figure 2)", _script_study))
register_analysis(Analysis("aggregators", "aggregators",
                           "other gradient-conflict surgeons vs naive co-training and the paper's surgery: gains, cost",
                           _aggregators))
register_analysis(Analysis("overfitting_curves", "overfitting_curves",
                           "dev scores per epoch of ord-FS+dev, and selection rules over epochs (Figures 3 and 5)",
                           _overfitting_curves))
