"""Is one method better than another, over target languages and over runs? Differences with a confidence interval,
a p-value and a correction for testing many pairs at once.

The question answered: would the method still beat the baseline on other target languages like these and in other
runs (seeds) like these? Languages and runs are *crossed* random factors: one run (seed) of a method serves every
target language, so a run's luck is shared by all its languages, and a method and a baseline run with the same seed
share that seed's K-shot sample (they are paired by it). English, the source language, is left out: it is not a
transfer target.

Paired scheme (both methods ran the same seeds). Per (language l, seed s) the difference d_ls of the two methods'
scores is modelled as d_ls = mu + a_l + b_s + e_ls, with independent language effects a_l ~ (0, var_lang), run
effects b_s ~ (0, var_seed) and residuals e_ls ~ (0, var_resid). `delta` estimates mu by the mean of d over the
L x S table. From the two-way ANOVA mean squares (MS_lang with L-1 df, MS_seed with S-1, MS_resid with
(L-1)(S-1)), Var(delta) = var_lang/L + var_seed/S + var_resid/(LS) is estimated without bias by
(MS_lang + MS_seed - MS_resid) / (LS); a mean square below MS_resid means its component is estimated as 0 (the
estimate is then max(MS_lang, MS_resid) + max(MS_seed, MS_resid) - MS_resid, over LS - never below what the
residuals alone give). The degrees of freedom of that combination of mean squares are Satterthwaite's, and the
interval and the two-sided p-value come from Student's t with them. For normal effects and a complete table the
test is exact when one component is absent and close to exact otherwise; `tests/test_calibration.py` checks the
false-positive rate and the coverage by simulation, with as few as 3 seeds. With few seeds the degrees of freedom
are few and the interval is wide: that is the honest price of a run effect that three runs can hardly estimate.
With only 2 seeds the run variance rests on 1 degree of freedom and Satterthwaite's approximation runs a little
liberal: in simulation (12 languages, run sd = residual sd) it rejected 10% of null datasets at 0.05. Use 3 seeds
or more for verdicts.

- Missing cells (a run that did not finish, a language not scored in one run): languages and seeds without any
  cell are dropped; the remaining holes are filled with the additive model's least-squares fitted value (Yates's
  missing-value method) and the residual degrees of freedom are reduced by the number of holes. The language and
  seed mean squares of the filled table then run a little high (a mean over fewer real cells varies more), so the
  test is conservative with holes: in simulation with 10% of the cells missing it rejected about 1% of null
  datasets instead of 5%. `delta` is then the model's estimate of mu (with no hole: the plain mean of the
  differences, i.e. the mean over languages of each language's difference of means over seeds).
- Methods that did not run the same seeds (e.g. a single zero-shot run against three co-training runs): the runs
  are not paired, so each method's run effects are independent. delta is the mean over languages of the
  per-language difference of means over seeds; its variance is estimated as var_D/L + sum over the two methods of
  var_seed_m/S_m, where var_D is the sample variance over languages of those differences (it holds the language
  effects and both methods' residuals) and var_seed_m = max(MS_seed_m - MS_resid_m, 0)/L comes from each method's
  own two-way ANOVA of its scores (0 for a method with a single run: its run effect cannot be estimated and is
  assumed absent). Satterthwaite degrees of freedom as above.
- One seed: the run effect cannot be separated from the method effect: the test is the paired t-test over
  languages (df L-1). One language: the t-test over seeds (df S-1).
- Variance components reported with each comparison (`var_lang`, `var_seed`, `var_resid`, in squared points) and
  `df`, so that a reader (and `fslib.analysis.power`) can see where the uncertainty comes from.

Assumptions: effects additive on the score scale, approximately normal (t-based), exchangeable languages and
runs. The inference is about these languages' population and these runs' population, not about other tasks.

Many comparisons: `holm` applies the Holm-Bonferroni step-down correction (controls the family-wise error rate
without assuming independent tests); `fslib.analysis.main_comparisons` applies it over the whole table it returns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from fslib.core.languages import SOURCE_LANG

LEVEL = 0.95
COMPARISON_COLUMNS = ["task", "k", "method", "baseline", "delta", "ci_low", "ci_high", "p_value", "n_langs",
                      "n_seeds", "var_lang", "var_seed", "var_resid", "df"]


def language_seed_matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """Scores of one method at one (task, K): languages x seeds (mean over duplicate rows)."""
    return rows.groupby(["lang", "seed"])["value"].mean().unstack("seed").sort_index(axis=0).sort_index(axis=1)


def mean_squares(table: np.ndarray) -> dict[str, np.ndarray]:
    """Two-way (languages x seeds) ANOVA of complete tables of shape (..., L, S), vectorised over the leading axes:
    grand mean, MS_lang, MS_seed and MS_resid (NaN where their degrees of freedom are 0)."""
    n_langs, n_seeds = table.shape[-2:]
    grand = table.mean(axis=(-2, -1))
    lang_means, seed_means = table.mean(axis=-1), table.mean(axis=-2)
    residual = table - lang_means[..., :, None] - seed_means[..., None, :] + grand[..., None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"mean": grand,
                "ms_lang": n_seeds * ((lang_means - grand[..., None]) ** 2).sum(-1) / (n_langs - 1),
                "ms_seed": n_langs * ((seed_means - grand[..., None]) ** 2).sum(-1) / (n_seeds - 1),
                "ms_resid": (residual ** 2).sum(axis=(-2, -1)) / ((n_langs - 1) * (n_seeds - 1))}


def satterthwaite(terms: list[tuple[np.ndarray, np.ndarray | float]]) -> tuple[np.ndarray, np.ndarray]:
    """A variance estimated as sum(c_i * MS_i), given as terms (c_i * MS_i, df_i): the sum and its Satterthwaite
    degrees of freedom (sum)^2 / sum((c_i * MS_i)^2 / df_i)."""
    terms = [(np.asarray(value, dtype=float), np.asarray(df, dtype=float)) for value, df in terms]
    total = sum(value for value, _ in terms)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = total ** 2 / sum(value ** 2 / df for value, df in terms)
    return total, df


def t_inference(delta: np.ndarray, variance: np.ndarray, df: np.ndarray, level: float = LEVEL) -> dict:
    """Student-t interval and two-sided p-value of `delta` with estimated `variance` on `df` degrees of freedom
    (a zero variance gives a point interval and p = 0 unless delta is 0, then p = 1)."""
    delta, variance, df = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (delta, variance, df)))
    se = np.sqrt(np.maximum(variance, 0.0))
    exact = se == 0
    safe_df = np.where(exact | ~np.isfinite(df), 1.0, df)
    half = stats.t.ppf(0.5 + level / 2, safe_df) * se
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * stats.t.sf(np.abs(delta) / np.where(exact, 1.0, se), safe_df)
    p = np.where(exact, np.where(delta == 0, 1.0, 0.0), p)
    missing = np.isnan(delta) | np.isnan(variance) | (np.isnan(df) & ~exact)
    return {"ci_low": np.where(missing, np.nan, delta - half), "ci_high": np.where(missing, np.nan, delta + half),
            "p_value": np.where(missing, np.nan, p)}


def paired_test(differences: np.ndarray, level: float = LEVEL, missing_cells: int = 0) -> dict[str, np.ndarray]:
    """The paired crossed scheme (module docstring) on complete difference tables of shape (..., L, S),
    vectorised over the leading axes: delta, ci_low, ci_high, p_value, var_lang, var_seed, var_resid, df.
    `missing_cells` (filled by `impute_additive`) is taken off the residual degrees of freedom."""
    differences = np.asarray(differences, dtype=float)
    n_langs, n_seeds = differences.shape[-2:]
    ms = mean_squares(differences)
    nan = np.full_like(ms["mean"], np.nan)
    df_resid = (n_langs - 1) * (n_seeds - 1) - missing_cells
    if n_seeds == 1 or n_langs == 1 or df_resid <= 0:  # one factor only: the t-test over the other
        collapsed = differences.mean(axis=-1 if n_langs > 1 else -2)
        units = collapsed.shape[-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = collapsed.var(axis=-1, ddof=1) if units > 1 else nan
        variance, df = spread / units, np.full_like(ms["mean"], units - 1.0)
        components = {"var_lang": spread if n_langs > 1 else nan, "var_seed": spread if n_langs == 1 else nan,
                      "var_resid": nan}
    else:
        ms_lang = np.maximum(ms["ms_lang"], ms["ms_resid"])
        ms_seed = np.maximum(ms["ms_seed"], ms["ms_resid"])
        ms_resid = ms["ms_resid"] * (n_langs - 1) * (n_seeds - 1) / df_resid
        cells = n_langs * n_seeds
        variance, df = satterthwaite([(ms_lang / cells, n_langs - 1), (ms_seed / cells, n_seeds - 1),
                                      (-ms_resid / cells, df_resid)])
        # a component estimated as 0 removes its mean square and the residual's minus sign: df of what is left
        only_resid = (ms_lang == ms_resid) & (ms_seed == ms_resid)
        lang_only = (ms_seed == ms_resid) & ~only_resid
        seed_only = (ms_lang == ms_resid) & ~only_resid
        df = np.where(lang_only, n_langs - 1.0, np.where(seed_only, n_seeds - 1.0,
                                                         np.where(only_resid, float(df_resid), df)))
        components = {"var_lang": (ms_lang - ms_resid) / n_seeds, "var_seed": (ms_seed - ms_resid) / n_langs,
                      "var_resid": ms_resid}
    return {"delta": ms["mean"], **t_inference(ms["mean"], variance, df, level), **components, "df": df,
            "se": np.sqrt(np.maximum(variance, 0.0))}


def impute_additive(table: np.ndarray) -> tuple[np.ndarray, int]:
    """Fill the NaN cells of a languages x seeds table with the additive model's least-squares fitted values
    (grand mean + language effect + seed effect fitted on the observed cells: Yates's missing-value method).
    Returns the filled table and the number of cells filled. Rows and columns without any value must have been
    dropped."""
    table = np.asarray(table, dtype=float)
    holes = np.isnan(table)
    if not holes.any():
        return table, 0
    n_langs, n_seeds = table.shape
    rows, cols = np.nonzero(~holes)
    design = np.zeros((len(rows), n_langs + n_seeds))
    design[np.arange(len(rows)), rows] = 1.0
    design[np.arange(len(rows)), n_langs + cols] = 1.0
    coefficients = np.linalg.lstsq(design, table[rows, cols], rcond=None)[0]  # minimum-norm: fitted values unique
    fitted = coefficients[:n_langs, None] + coefficients[None, n_langs:]
    return np.where(holes, fitted, table), int(holes.sum())


def _complete(table: pd.DataFrame) -> pd.DataFrame:
    return table.dropna(how="all", axis=0).dropna(how="all", axis=1)


def unpaired_test(method: np.ndarray, baseline: np.ndarray, level: float = LEVEL) -> dict:
    """The unpaired crossed scheme (module docstring) for two complete languages x seeds score tables with the
    same languages (rows) and unrelated runs (columns)."""
    n_langs = method.shape[0]
    per_language = method.mean(axis=1) - baseline.mean(axis=1)
    delta = float(per_language.mean())
    spread = float(per_language.var(ddof=1)) if n_langs > 1 else np.nan
    terms, var_seed, var_resid, resid_in_spread = [(spread / n_langs, n_langs - 1)], 0.0, 0.0, 0.0
    for scores in (method, baseline):
        n_seeds = scores.shape[1]
        if n_seeds < 2:
            continue
        ms = mean_squares(scores)
        if n_langs > 1:
            resid = float(ms["ms_resid"])
            var_resid += resid
            resid_in_spread += resid / n_seeds
            if ms["ms_seed"] > resid:
                var_seed += float(ms["ms_seed"] - resid) / n_langs
                terms += [(float(ms["ms_seed"]) / (n_langs * n_seeds), n_seeds - 1),
                          (-resid / (n_langs * n_seeds), (n_langs - 1) * (n_seeds - 1))]
        else:
            var_seed += float(ms["ms_seed"])
            terms.append((float(ms["ms_seed"]) / n_seeds, n_seeds - 1))
    if n_langs == 1:
        terms = terms[1:]
    variance, df = satterthwaite(terms) if terms else (np.nan, np.nan)
    var_lang = max(spread - resid_in_spread, 0.0) if n_langs > 1 else np.nan
    return {"delta": delta, **{key: float(value) for key, value in t_inference(delta, variance, df, level).items()},
            "var_lang": var_lang, "var_seed": var_seed, "var_resid": var_resid, "df": float(df),
            "se": float(np.sqrt(max(variance, 0.0)))}


def compare_pair(method_rows: pd.DataFrame, baseline_rows: pd.DataFrame, source_lang: str = SOURCE_LANG,
                 seed: int = 0) -> dict:
    """delta, ci_low, ci_high, p_value, n_langs, n_seeds, var_lang, var_seed, var_resid, df, se for the rows of two
    methods at one (task, K): the paired scheme when both ran the same seeds, else the unpaired one. `seed` is
    kept for callers of the former bootstrap; the scheme is deterministic."""
    method, baseline = language_seed_matrix(method_rows), language_seed_matrix(baseline_rows)
    langs = sorted((set(method.index) & set(baseline.index)) - {source_lang})
    out = {"n_langs": len(langs), "n_seeds": min(method.shape[1], baseline.shape[1]) if langs else 0}
    if not langs:
        missing = ("delta", "ci_low", "ci_high", "p_value", "var_lang", "var_seed", "var_resid", "df", "se")
        return {**out, **dict.fromkeys(missing, np.nan)}
    method, baseline = method.loc[langs], baseline.loc[langs]
    if list(method.columns) == list(baseline.columns):
        differences = _complete(method - baseline)
        filled, holes = impute_additive(differences.to_numpy(float))
        out["n_langs"], out["n_seeds"] = differences.shape
        result = paired_test(filled, missing_cells=holes)
        return {**out, **{key: float(value) for key, value in result.items()}}
    tables = [_complete(table) for table in (method, baseline)]
    kept = sorted(set(tables[0].index) & set(tables[1].index))
    out["n_langs"] = len(kept)
    filled = [impute_additive(table.loc[kept].to_numpy(float))[0] for table in tables]
    return {**out, **unpaired_test(*filled)}


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted
