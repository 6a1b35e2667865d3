"""The paper's claims on one task, tested on measured rows: each claim is a comparison of two methods on the
targets' test scores, paired by (language, seed, K), with a one-sided Wilcoxon signed-rank test on the
differences; the claim that distant targets gain most compares the gains of targets whose script differs from
the source's with those of same-script targets (one-sided Mann-Whitney U over languages).

Verdict: "holds" when the one-sided p-value in the claimed direction is below `alpha`, "does not hold" when the
one-sided p-value in the opposite direction is, "inconclusive" otherwise (or with fewer than 5 pairs).
"""

from __future__ import annotations

import pandas as pd
from scipy.stats import mannwhitneyu, wilcoxon

from fslib.analysis.tables import headline_test_rows
from fslib.core.languages import SOURCE_LANG, language

ALPHA = 0.05
MIN_PAIRS = 5
# (claim, better method, worse method, K values or None for every K both have)
PAIRED_CLAIMS = (
    ("co-training beats two-step ord-FS", "gradient-co-train", "ord-FS", None),
    ("co-training beats co-FT", "gradient-co-train", "co-FT", None),
    ("gradient surgery beats naive co-training", "gradient-co-train", "naive-co-train", None),
    ("ord-FS+dev overstates ord-FS (dev-set selection helps)", "ord-FS+dev", "ord-FS", None),
    ("same-script subsets beat single-language co-training", "gradient-subset", "gradient-single", None),
)
COLUMNS = ["claim", "better", "worse", "n", "mean_better", "mean_worse", "mean_diff", "wins", "p_value", "verdict"]


def verdict(p_greater: float, p_less: float, n: int, alpha: float = ALPHA) -> str:
    if n < MIN_PAIRS:
        return "inconclusive"
    if p_greater < alpha:
        return "holds"
    if p_less < alpha:
        return "does not hold"
    return "inconclusive"


def paired_differences(results: pd.DataFrame, better: str, worse: str, task: str, ks=None,
                       source_lang: str = SOURCE_LANG) -> pd.DataFrame:
    """Test scores of two methods on the same (lang, seed, k), targets only: columns lang, seed, k, better,
    worse, diff (better - worse)."""
    rows = headline_test_rows(results, task)
    rows = rows[rows["lang"] != source_lang]
    if ks is not None:
        rows = rows[rows["k"].isin(ks)]
    keys = ["lang", "seed", "k"]
    pairs = pd.merge(rows[rows["method"] == better].groupby(keys)["value"].mean().rename("better"),
                     rows[rows["method"] == worse].groupby(keys)["value"].mean().rename("worse"),
                     left_index=True, right_index=True).reset_index()
    pairs["diff"] = pairs["better"] - pairs["worse"]
    return pairs


def paired_claim(results: pd.DataFrame, claim: str, better: str, worse: str, task: str, ks=None,
                 alpha: float = ALPHA) -> dict:
    """One row of the claims table: means, wins and the one-sided Wilcoxon signed-rank test of better > worse."""
    pairs = paired_differences(results, better, worse, task, ks)
    n = len(pairs)
    nonzero = pairs["diff"][pairs["diff"] != 0]
    if len(nonzero) >= 1:
        p_greater = float(wilcoxon(pairs["diff"], alternative="greater", zero_method="zsplit").pvalue)
        p_less = float(wilcoxon(pairs["diff"], alternative="less", zero_method="zsplit").pvalue)
    else:  # all ties: no evidence either way
        p_greater = p_less = 1.0
    return {"claim": claim, "better": better, "worse": worse, "n": n,
            "mean_better": pairs["better"].mean() if n else float("nan"),
            "mean_worse": pairs["worse"].mean() if n else float("nan"),
            "mean_diff": pairs["diff"].mean() if n else float("nan"),
            "wins": int((pairs["diff"] > 0).sum()), "p_value": p_greater,
            "verdict": verdict(p_greater, p_less, n, alpha)}


def distance_claim(results: pd.DataFrame, task: str, method: str = "gradient-co-train", baseline: str = "ord-FS",
                   ks=None, alpha: float = ALPHA, source_lang: str = SOURCE_LANG) -> dict:
    """Targets far from the source gain most: per target, the mean gain of `method` over `baseline` (over seeds
    and K); "far" targets are those whose script differs from the source's. One-sided Mann-Whitney U, far > near.
    mean_better / mean_worse are the mean gains of the far / near targets, n the number of targets."""
    pairs = paired_differences(results, method, baseline, task, ks, source_lang)
    gains = pairs.groupby("lang")["diff"].mean()
    far = gains[[language(code).script != language(source_lang).script for code in gains.index]]
    near = gains.drop(far.index)
    n = len(gains)
    if len(far) and len(near):
        p_greater = float(mannwhitneyu(far, near, alternative="greater").pvalue)
        p_less = float(mannwhitneyu(far, near, alternative="less").pvalue)
    else:
        p_greater = p_less = 1.0
    return {"claim": f"targets far from {source_lang} (other script) gain most from {method} over {baseline}",
            "better": f"far ({', '.join(far.index)})", "worse": f"near ({', '.join(near.index)})", "n": n,
            "mean_better": far.mean(), "mean_worse": near.mean(), "mean_diff": far.mean() - near.mean(),
            "wins": int((far > near.mean()).sum()), "p_value": p_greater,
            "verdict": verdict(p_greater, p_less, n, alpha)}


def claims_table(results: pd.DataFrame, task: str = "pos", alpha: float = ALPHA) -> pd.DataFrame:
    """Every claim of PAIRED_CLAIMS plus the distance claim on the rows of `task` (claims whose methods were not
    run have n = 0 and are inconclusive). Scores are the headline metric on the test split, in points."""
    rows = [paired_claim(results, claim, better, worse, task, ks, alpha)
            for claim, better, worse, ks in PAIRED_CLAIMS]
    rows.append(distance_claim(results, task, alpha=alpha))
    return pd.DataFrame(rows, columns=COLUMNS)


def claims_markdown(table: pd.DataFrame) -> str:
    """The claims table as Markdown (scores in points, p-values to three significant digits)."""
    lines = ["| claim | better | worse | n | mean better | mean worse | mean diff | wins | p (one-sided) | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples(index=False):
        lines.append(f"| {row.claim} | {row.better} | {row.worse} | {row.n} | {row.mean_better:.1f} | "
                     f"{row.mean_worse:.1f} | {row.mean_diff:+.1f} | {row.wins}/{row.n} | {row.p_value:.3g} | "
                     f"**{row.verdict}** |")
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
        verdicts = pd.DataFrame({"shipped": claims_table(shipped, args.task).set_index("claim")["verdict"],
                                 "rerun": claims_table(rerun, args.task).set_index("claim")["verdict"]})
        print(verdicts.to_string())
        return
    table = claims_table(load_results(args.results), args.task)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(claims_markdown(table))


if __name__ == "__main__":
    main()
