"""compare_methods over every (method, baseline) pair of a results folder or CSV, as results/verdicts/ shows it.

Run it once with PYTHONPATH at a checkout of each commit to compare (it uses only the public names that both
schemes have): `PYTHONPATH=CHECKOUT python bench/compare_methods_before_after.py RESULTS`."""

import sys
import warnings

import pandas as pd

from fslib.analysis import compare_methods
from fslib.results import load_results

BASELINES = ("ord-FS", "naive-co-train")
METHODS = ("gradient-co-train", "naive-co-train", "co-FT", "ord-FS+dev")
COLUMNS = ["task", "k", "method", "baseline", "delta", "ci_low", "ci_high", "p_value"]


def comparisons(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, K > 0, method, baseline) where both methods ran."""
    tables = []
    for task in sorted(results["task"].unique()):
        ran = set(results.loc[results["task"] == task, "method"])
        tables += [compare_methods(results, task=task, method=method, baseline=baseline)
                   for baseline in BASELINES for method in METHODS
                   if method != baseline and {method, baseline} <= ran]
    table = pd.concat(tables)
    return table.loc[table["k"] > 0, COLUMNS]


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    table = comparisons(load_results(sys.argv[1]))
    print(table.round(3).to_string(index=False))
    print("significant at 0.05:", int((table["p_value"] < 0.05).sum()), "of", len(table))
