"""Overfitting curves (paper §5.5, Figure 3, appendix Figure 5) from the per-epoch rows of runs.

Runs write `split=dev` rows per epoch (ord-FS+dev: the target language's dev set; co-training: `lang=en`, the
source dev set used for model selection, and the target dev sets) and, with `test_curves`, `split=test-curve`
rows per epoch. Scores are on the task's headline metric.
"""

from __future__ import annotations

import pandas as pd

from fslib.analysis.reference import ensure_result_rows
from fslib.core.languages import SOURCE_LANG
from fslib.core.tasks import get_task

# Figure 5's selection rules: name -> (runs: target-adapting or co-training, selection: the last epoch, or the
# best epoch on the source or the target dev set).
SELECTION_RULES = {
    "ord-FS": ("adapt", "last"),
    "ord-FS+dev": ("adapt", "target"),
    "gradient-co-train": ("co", "source"),
    "gradient-co-train+dev": ("co", "target"),
}


def _epoch_rows(results: pd.DataFrame, task: str, k: int, method: str, split: str) -> pd.DataFrame:
    rows = ensure_result_rows(results)
    chosen = (rows["task"] == task) & (rows["k"] == k) & (rows["method"] == method) & (rows["split"] == split) & \
        (rows["metric"] == get_task(task).metric) & rows["epoch"].notna()
    rows = rows[chosen].copy()
    rows["epoch"] = rows["epoch"].astype(int)
    return rows


def dev_curves(results: pd.DataFrame, task: str, k: int, method: str = "ord-FS+dev", langs=None,
               source_lang: str = SOURCE_LANG) -> pd.DataFrame:
    """Figure 3: per language and epoch the dev score, averaged over seeds (columns lang, epoch, value, seeds).
    The source language is left out unless named in `langs`."""
    rows = _epoch_rows(results, task, k, method, "dev")
    rows = rows[rows["lang"].isin(langs)] if langs is not None else rows[rows["lang"] != source_lang]
    curves = rows.groupby(["lang", "epoch"])["value"].agg(value="mean", seeds="count").reset_index()
    return curves.sort_values(["lang", "epoch"], kind="stable").reset_index(drop=True)


def best_dev_epochs(results: pd.DataFrame, task: str, k: int, method: str = "ord-FS+dev", per_seed: bool = False,
                    source_lang: str = SOURCE_LANG) -> pd.DataFrame:
    """Per target language, the epoch with the best dev score (the earliest on a tie, as the training loop
    selects) and that score: on the seed-averaged curve (columns lang, best_epoch, best_value), or per seed
    with `per_seed` (columns lang, seed, best_epoch, best_value)."""
    if per_seed:
        rows = _epoch_rows(results, task, k, method, "dev")
        rows = rows[rows["lang"] != source_lang]
        curves = rows.groupby(["lang", "seed", "epoch"])["value"].mean().reset_index()
        keys = ["lang", "seed"]
    else:
        curves, keys = dev_curves(results, task, k, method, source_lang=source_lang), ["lang"]
    curves = curves.sort_values([*keys, "epoch"], kind="stable")
    best = curves.loc[curves.groupby(keys)["value"].idxmax()]
    best = best.rename(columns={"epoch": "best_epoch", "value": "best_value"})
    return best[[*keys, "best_epoch", "best_value"]].reset_index(drop=True)


def share_best_at_first_epoch(best: pd.DataFrame) -> float:
    """Share of the rows of `best_dev_epochs` (languages, or language-seed pairs) whose best epoch is 1: the
    paper reports 6 of 8 TyDiQA targets at K=5 and 6.38% of NER languages at K=1."""
    return float((best["best_epoch"] == 1).mean()) if len(best) else float("nan")


def _pick(dev: pd.Series | None, test: pd.Series, n: int) -> float:
    """Test score of the epoch picked among epochs <= n: the last one without a dev curve, else the best dev
    score (the earliest on a tie)."""
    epochs = [epoch for epoch in test.index if epoch <= n]
    if dev is not None:
        scored = dev[[epoch for epoch in epochs if epoch in dev.index]]
        if scored.empty:
            return float("nan")
        return float(test[scored.idxmax()])
    return float(test[n]) if n in test.index else float("nan")


def selection_curves(results: pd.DataFrame, task: str, k: int, lang: str, adapt_method: str = "ord-FS+dev",
                     co_method: str = "gradient-co-train", source_lang: str = SOURCE_LANG) -> pd.DataFrame:
    """Figure 5: for n = 1..E, the test score (averaged over seeds) of the epoch each rule picks among epochs
    <= n, for one target language: ord-FS (epoch n), ord-FS+dev (best target dev), gradient-co-train (best
    source dev, the `lang=en` dev rows of the run) and gradient-co-train+dev (best target dev). Needs the
    `test-curve` rows of the runs (`test_curves`) and their dev rows; the target-adapting rules read the runs
    of `adapt_method` (ord-FS+dev runs hold the target dev curve; ord-FS and ord-FS+dev train alike). Columns:
    rule, epoch, value, seeds."""
    methods = {"adapt": adapt_method, "co": co_method}
    records = []
    for rule, (kind, selection) in SELECTION_RULES.items():
        tests = _epoch_rows(results, task, k, methods[kind], "test-curve")
        devs = _epoch_rows(results, task, k, methods[kind], "dev")
        tests = tests[tests["lang"] == lang]
        dev_lang = source_lang if selection == "source" else lang
        for seed, test_rows in tests.groupby("seed"):
            test = test_rows.groupby("epoch")["value"].mean().sort_index()
            dev = None
            if selection != "last":
                seed_dev = devs[(devs["seed"] == seed) & (devs["lang"] == dev_lang)]
                dev = seed_dev.groupby("epoch")["value"].mean().sort_index()
            for n in test.index:
                records.append({"rule": rule, "seed": seed, "epoch": int(n), "value": _pick(dev, test, n)})
    frame = pd.DataFrame(records, columns=["rule", "seed", "epoch", "value"])
    curves = frame.groupby(["rule", "epoch"], sort=False)["value"].agg(value="mean", seeds="count").reset_index()
    rank = {rule: position for position, rule in enumerate(SELECTION_RULES)}
    return curves.sort_values(["rule", "epoch"], key=lambda column: column.map(rank) if column.name == "rule"
                              else column, kind="stable").reset_index(drop=True)
