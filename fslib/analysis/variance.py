"""Where a cell's spread comes from: variance components of the test scores of each (task, K, method), over
target languages and runs.

Scores y_ls of one method (language l, seed s; the source language left out) are modelled as mu + a_l + b_s + e_ls
with crossed random language and run effects (`fslib.analysis.significance`'s model, applied to scores instead of
differences); the components are the two-way ANOVA estimates (a negative estimate is shown as 0): `var_lang`
(how much targets differ), `var_seed` (how much a whole run moves every language: the K-shot draw and the training
randomness together, since one seed fixes both), `var_resid` (a language's luck in one run, test-set sampling
noise included). Missing cells are filled as in `fslib.analysis.significance.impute_additive`.
"""

from __future__ import annotations

import pandas as pd

from fslib.analysis.significance import impute_additive, language_seed_matrix, mean_squares
from fslib.analysis.tables import headline_test_rows, method_rank
from fslib.core.languages import SOURCE_LANG

COLUMNS = ["task", "k", "method", "n_langs", "n_seeds", "mean", "var_lang", "var_seed", "var_resid"]


def variance_components(results: pd.DataFrame, source_lang: str = SOURCE_LANG) -> pd.DataFrame:
    """One row per (task, K, method) with at least 2 target languages and 2 seeds: the components (points^2)."""
    rows = headline_test_rows(results)
    rows = rows[rows["lang"] != source_lang]
    out = []
    for (task, k, method), group in rows.groupby(["task", "k", "method"], sort=False):
        table = language_seed_matrix(group).dropna(how="all").dropna(how="all", axis=1)
        if min(table.shape) < 2:
            continue
        filled, holes = impute_additive(table.to_numpy(float))
        ms = mean_squares(filled)
        n_langs, n_seeds = table.shape
        resid = float(ms["ms_resid"]) * (n_langs - 1) * (n_seeds - 1) / max((n_langs - 1) * (n_seeds - 1) - holes, 1)
        out.append({"task": task, "k": k, "method": method, "n_langs": n_langs, "n_seeds": n_seeds,
                    "mean": float(ms["mean"]), "var_lang": max(float(ms["ms_lang"]) - resid, 0.0) / n_seeds,
                    "var_seed": max(float(ms["ms_seed"]) - resid, 0.0) / n_langs, "var_resid": resid})
    table = pd.DataFrame(out, columns=COLUMNS)
    order = sorted(table.index, key=lambda i: (str(table.at[i, "task"]), table.at[i, "k"],
                                               method_rank(table.at[i, "method"])))
    return table.loc[order].reset_index(drop=True)
