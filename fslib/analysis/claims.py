"""The paper's claims on one task, tested on measured rows, one row per claim and K.

Each paired claim ("A beats B") is tested at each K both methods ran, on its own unit: the target languages, with
the runs (seeds) as a crossed random factor - one run serves every language of its seed, and A's and B's runs of
one seed share its K-shot sample (`fslib.analysis.significance`, the scheme of `compare_methods`: two-way random-effects
ANOVA of the (language, seed) differences, Satterthwaite t). K values are never pooled: K=5 and K=10 runs of one
seed share nested shots, and the claim may hold at one K and not at the other. The distance claim ("targets far
from the source gain most") compares, per K, the mean gains of the targets whose script differs from the
source's with those of same-script targets (Welch's t-test over languages; a run's effect adds the same amount
to every language's gain, so it cancels in that contrast).

Rule (stated with every table, `CLAIMS_RULE`): the p-values of a table are two-sided and Holm-Bonferroni
corrected across all its rows (family-wise error 0.05). A claim **holds** at a K when its corrected p is below
`alpha` and the difference is in the claimed direction, **does not hold** when its corrected p is below `alpha`
and the difference is in the opposite direction (the reverse is established), and is **inconclusive** otherwise,
or with fewer than `MIN_LANGUAGES` target languages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from fslib.analysis.power import paper_components, power_at
from fslib.analysis.significance import compare_pair, holm
from fslib.analysis.tables import headline_test_rows
from fslib.core.languages import SOURCE_LANG, language

ALPHA = 0.05
MIN_LANGUAGES = 3
# (claim, better method, worse method, K values or None for every K both have)
PAIRED_CLAIMS = (
    ("co-training beats two-step ord-FS", "gradient-co-train", "ord-FS", None),
    ("co-training beats co-FT", "gradient-co-train", "co-FT", None),
    ("gradient surgery beats naive co-training", "gradient-co-train", "naive-co-train", None),
    ("ord-FS+dev overstates ord-FS (dev-set selection helps)", "ord-FS+dev", "ord-FS", None),
    ("same-script subsets beat single-language co-training", "gradient-subset", "gradient-single", None),
)
COLUMNS = ["claim", "k", "better", "worse", "n_langs", "n_seeds", "mean_better", "mean_worse", "mean_diff",
           "ci_low", "ci_high", "wins", "p_value", "p_holm", "verdict", "paper_diff", "power"]
CLAIMS_RULE = ("One row per claim and K; unit: the target languages, runs (seeds) a crossed random factor shared "
               "by all languages of a run (fslib.analysis.significance). p: two-sided (Welch's t over languages "
               "for the "
               "distance claim), Holm-corrected across the table's rows. Verdict: holds when p (Holm) < {alpha} "
               "in the claimed direction, does not hold when p (Holm) < {alpha} in the opposite direction, "
               "inconclusive otherwise or with fewer than {min_langs} target languages. Power: the probability this "
               "grid (its languages x seeds and its own variance components) had of finding the paper's Table 1 "
               "difference at 0.05, before the Holm correction.")


def verdict(mean_diff: float, p_holm: float, n_langs: int, alpha: float = ALPHA) -> str:
    """holds / does not hold / inconclusive from the corrected two-sided p and the sign of the difference."""
    if n_langs < MIN_LANGUAGES or np.isnan(p_holm) or p_holm >= alpha:
        return "inconclusive"
    return "holds" if mean_diff > 0 else "does not hold"


def paired_differences(results: pd.DataFrame, better: str, worse: str, task: str, ks=None,
                       source_lang: str = SOURCE_LANG) -> pd.DataFrame:
    """Test scores of two methods on the same (lang, seed, k), targets only: columns lang, seed, k, better,
    worse, diff (better - worse)."""
    rows = _target_rows(results, task, source_lang)
    if ks is not None:
        rows = rows[rows["k"].isin(ks)]
    keys = ["lang", "seed", "k"]
    pairs = pd.merge(rows[rows["method"] == better].groupby(keys)["value"].mean().rename("better"),
                     rows[rows["method"] == worse].groupby(keys)["value"].mean().rename("worse"),
                     left_index=True, right_index=True).reset_index()
    pairs["diff"] = pairs["better"] - pairs["worse"]
    return pairs


def _target_rows(results: pd.DataFrame, task: str, source_lang: str = SOURCE_LANG) -> pd.DataFrame:
    rows = headline_test_rows(results, task)
    return rows[rows["lang"] != source_lang]


def claim_ks(results: pd.DataFrame, better: str, worse: str, task: str, ks=None) -> list[int]:
    """The K values both methods ran (of `ks` if given); [] when one of them did not run."""
    rows = _target_rows(results, task)
    common = set(rows.loc[rows["method"] == better, "k"]) & set(rows.loc[rows["method"] == worse, "k"])
    return sorted(common & set(ks) if ks is not None else common)


def paired_claim(results: pd.DataFrame, claim: str, better: str, worse: str, task: str, k: int | None) -> dict:
    """One row of the claims table at one K (p_holm and verdict filled by `claims_table`): means over the
    (language, seed) cells, the crossed-scheme difference with its 95% interval and two-sided p, and `wins`, the
    target languages whose mean difference over seeds is positive. k None: neither method ran."""
    rows = _target_rows(results, task)
    at_k = rows[rows["k"] == k]
    pairs = paired_differences(results, better, worse, task, [k])
    compared = compare_pair(at_k[at_k["method"] == better], at_k[at_k["method"] == worse]) if len(pairs) else {}
    per_language = pairs.groupby("lang")["diff"].mean()
    return {"claim": claim, "k": k, "better": better, "worse": worse, "n_langs": compared.get("n_langs", 0),
            "n_seeds": compared.get("n_seeds", 0), "mean_better": pairs["better"].mean(),
            "mean_worse": pairs["worse"].mean(), "mean_diff": compared.get("delta", np.nan),
            "ci_low": compared.get("ci_low", np.nan), "ci_high": compared.get("ci_high", np.nan),
            "wins": int((per_language > 0).sum()), "p_value": compared.get("p_value", np.nan),
            **design_power(compared, task, k, better, worse)}


def design_power(compared: dict, task: str, k: int | None, better: str, worse: str) -> dict:
    """The paper's difference for the claim (its Table 1) and the power this grid had to detect it: the claim's own
    variance components and languages x seeds in fslib.analysis.power's formula (unadjusted alpha 0.05)."""
    effect = paper_components(task, k, better, worse)[2] if k is not None else np.nan
    components = [compared.get(name, np.nan) for name in ("var_lang", "var_seed", "var_resid")]
    power = power_at(effect, *components, compared.get("n_langs", 0), compared.get("n_seeds", 0))
    return {"paper_diff": effect, "power": power}


def distance_claim(results: pd.DataFrame, task: str, k: int | None, method: str = "gradient-co-train",
                   baseline: str = "ord-FS", source_lang: str = SOURCE_LANG) -> dict:
    """Targets far from the source gain most, at one K: per target, the mean gain of `method` over `baseline`
    over seeds; "far" targets are those whose script differs from the source's. Welch's t-test far vs near over
    languages (two-sided; the run effects cancel in the contrast). mean_better / mean_worse are the mean gains
    of the far / near targets, `wins` the far targets gaining more than the near ones' mean."""
    pairs = paired_differences(results, method, baseline, task, [k], source_lang)
    gains = pairs.groupby("lang")["diff"].mean()
    far = gains[[language(code).script != language(source_lang).script for code in gains.index]]
    near = gains.drop(far.index)
    row = {"claim": f"targets far from {source_lang} (other script) gain most from {method} over {baseline}",
           "k": k, "better": f"far ({', '.join(far.index)})", "worse": f"near ({', '.join(near.index)})",
           "n_langs": len(gains), "n_seeds": pairs["seed"].nunique(), "mean_better": far.mean(),
           "mean_worse": near.mean(), "mean_diff": far.mean() - near.mean(), "ci_low": np.nan,
           "ci_high": np.nan, "wins": int((far > near.mean()).sum()), "p_value": np.nan}
    if len(far) >= 2 and len(near) >= 2:
        test = stats.ttest_ind(far, near, equal_var=False)
        interval = test.confidence_interval(0.95)
        row.update(p_value=float(test.pvalue), ci_low=float(interval.low), ci_high=float(interval.high))
    return row


def claims_table(results: pd.DataFrame, task: str = "pos", alpha: float = ALPHA) -> pd.DataFrame:
    """Every claim of PAIRED_CLAIMS at each K both its methods ran, plus the distance claim at each K, on the
    rows of `task`; Holm across all rows and the verdicts of `CLAIMS_RULE`. A claim whose methods were not run
    is one row with k and p missing, inconclusive. Scores are the headline metric on the test split, in points."""
    rows = []
    for claim, better, worse, ks in PAIRED_CLAIMS:
        rows += [paired_claim(results, claim, better, worse, task, k)
                 for k in claim_ks(results, better, worse, task, ks) or [None]]
    rows += [distance_claim(results, task, k) for k in claim_ks(results, "gradient-co-train", "ord-FS", task)]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["k"] = table["k"].astype("Int64")
    table["p_holm"] = holm(table["p_value"])
    table["verdict"] = [verdict(d, p, n, alpha) for d, p, n in
                        zip(table["mean_diff"], table["p_holm"], table["n_langs"])]
    return table


def _number(value: float, spec: str) -> str:
    return "" if pd.isna(value) else format(value, spec)


def claims_markdown(table: pd.DataFrame, alpha: float = ALPHA) -> str:
    """The claims table as Markdown (scores in points, p-values to three significant digits), with the rule."""
    lines = ["| claim | K | better | worse | languages × seeds | mean better | mean worse | diff [95% CI] | "
             "wins | p | p (Holm) | verdict | paper's diff | power for it |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples(index=False):
        k = "" if pd.isna(row.k) else row.k
        interval = "" if np.isnan(row.ci_low) else f" [{row.ci_low:+.1f}, {row.ci_high:+.1f}]"
        lines.append(f"| {row.claim} | {k} | {row.better} | {row.worse} | {row.n_langs} × {row.n_seeds} | "
                     f"{row.mean_better:.1f} | {row.mean_worse:.1f} | {row.mean_diff:+.1f}{interval} | "
                     f"{row.wins}/{row.n_langs} | {row.p_value:.3g} | {row.p_holm:.3g} | **{row.verdict}** | "
                     f"{_number(row.paper_diff, '+.2f')} | {_number(row.power, '.2f')} |")
    lines.append("")
    lines.append(CLAIMS_RULE.format(alpha=alpha, min_langs=MIN_LANGUAGES))
    return "\n".join(lines)


def rerun_agreement(shipped: pd.DataFrame, rerun: pd.DataFrame, task: str = "pos") -> pd.DataFrame:
    """Does a rerun reproduce shipped results? Per Table 1 cell (method, K; targets only): the mean over seeds of
    the languages' mean test score in each, the difference, and whether it lies within seed noise: |difference|
    at most twice its standard error from the two sets of seeds (sample sd over seeds), or exactly zero. Also
    the share of (lang, seed) rows whose score is identical."""
    cells = []
    for name, results in (("shipped", shipped), ("rerun", rerun)):
        rows = headline_test_rows(results, task)
        rows = rows[rows["lang"] != SOURCE_LANG]
        per_seed = rows.groupby(["method", "k", "seed"])["value"].mean()
        cells.append(per_seed.groupby(["method", "k"]).agg(["mean", "std", "count"]).add_prefix(f"{name}_"))
        if name == "shipped":
            shipped_rows = rows.set_index(["method", "k", "seed", "lang"])["value"]
        else:
            rerun_rows = rows.set_index(["method", "k", "seed", "lang"])["value"]
    table = pd.concat(cells, axis=1, join="inner").reset_index()
    table["diff"] = table["rerun_mean"] - table["shipped_mean"]
    standard_error = (table["shipped_std"] ** 2 / table["shipped_count"]
                      + table["rerun_std"] ** 2 / table["rerun_count"]) ** 0.5
    table["within_noise"] = (table["diff"].abs() <= 2 * standard_error) | (table["diff"] == 0)
    common = shipped_rows.index.intersection(rerun_rows.index)
    shares = (shipped_rows[common] == rerun_rows[common]).groupby(["method", "k"]).mean().rename("identical_rows")
    return table.merge(shares.reset_index(), on=["method", "k"], how="left")


def main(argv: list[str] | None = None) -> None:
    """python -m fslib.analysis.claims RESULTS [--task pos] [--csv OUT] [--against SHIPPED]: the claims table of
    measured rows, as Markdown; with --against, how a rerun compares with shipped results."""
    import argparse

    from fslib.store.results import load_results

    parser = argparse.ArgumentParser(prog="python -m fslib.analysis.claims", description=main.__doc__)
    parser.add_argument("results", help="a results.csv, a run folder or a folder of runs")
    parser.add_argument("--task", default="pos")
    parser.add_argument("--csv", help="also write the table here")
    parser.add_argument("--against", help="shipped results: print how far RESULTS (a rerun) lies from them, and "
                                          "both claims tables' verdicts")
    args = parser.parse_args(argv)
    if args.against:
        shipped, rerun = load_results(args.against), load_results(args.results)
        print(rerun_agreement(shipped, rerun, args.task).to_string(index=False, float_format="%.2f"))
        verdicts = pd.DataFrame({"shipped": claims_table(shipped, args.task).set_index(["claim", "k"])["verdict"],
                                 "rerun": claims_table(rerun, args.task).set_index(["claim", "k"])["verdict"]})
        print(verdicts.to_string())
        return
    table = claims_table(load_results(args.results), args.task)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(claims_markdown(table))


if __name__ == "__main__":
    main()
