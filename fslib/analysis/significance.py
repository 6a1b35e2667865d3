"""Is one method better than another? Differences with a confidence interval, a p-value and a correction for
testing many pairs at once.

The unit of evidence is the target language. For a method and a baseline at one (task, K), the difference of a
language is the method's mean over seeds minus the baseline's mean over seeds; `delta` is the mean of these
differences over the target languages (English, the source language, is left out: it is not a transfer target).

- Interval: a two-level (hierarchical) percentile bootstrap. Each replicate draws languages with replacement and,
  inside the replicate, seeds with replacement; when both methods ran the same seeds the seed draw is shared
  (a seed fixes the K-shot sample, so the two methods' runs of one seed are paired), otherwise each method's
  seeds are drawn on their own. Both sources of variation - which languages, which shots and initialisations -
  thus widen the interval.
- p-value: a two-sided paired sign-flip permutation test on the per-language differences (under the null
  hypothesis "no difference", each language's difference is as likely to carry either sign). Exact (all 2^n sign
  patterns) up to 16 languages, Monte Carlo with a fixed seed beyond. It assumes no normality, unlike a t-test,
  and gives the exact level for the handful of languages a task has.
- Many comparisons: `holm` applies the Holm-Bonferroni step-down correction (controls the family-wise error rate
  without assuming independent tests); `main_comparisons` applies it over the whole table it returns.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd

from fslib.core.languages import SOURCE_LANG

BOOTSTRAP_SAMPLES = 4000
EXACT_PERMUTATION_LANGUAGES = 16
PERMUTATION_SAMPLES = 100_000
COMPARISON_COLUMNS = ["task", "k", "method", "baseline", "delta", "ci_low", "ci_high", "p_value", "n_langs",
                      "n_seeds"]


def language_seed_matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """Scores of one method at one (task, K): languages x seeds (mean over duplicate rows)."""
    return rows.groupby(["lang", "seed"])["value"].mean().unstack("seed").sort_index(axis=0).sort_index(axis=1)


def sign_flip_p_value(differences: np.ndarray, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip permutation test of `mean(differences) == 0`: the share of
    sign patterns whose |mean| reaches the observed |mean| (the observed pattern counts, so p >= 1/2^n)."""
    differences = np.asarray(differences, dtype=float)
    n = len(differences)
    if n == 0:
        return float("nan")
    observed = abs(differences.mean())
    if n <= EXACT_PERMUTATION_LANGUAGES:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice((1.0, -1.0), size=(PERMUTATION_SAMPLES, n))
        signs[0] = 1.0
    means = np.abs(signs @ differences) / n
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))


def bootstrap_interval(method: np.ndarray, baseline: np.ndarray, paired_seeds: bool, level: float = 0.95,
                       samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of delta from `method` and `baseline` score matrices (languages x seeds, same
    language order; NaN for a missing run): languages drawn with replacement, then seeds (shared when
    `paired_seeds`)."""
    rng = np.random.default_rng(seed)
    n_langs = method.shape[0]
    langs = rng.integers(0, n_langs, size=(samples, n_langs))

    def seed_means(scores: np.ndarray, draws: np.ndarray) -> np.ndarray:
        # scores[langs][:, :, draws] per replicate: (samples, n_langs) means over the drawn seeds
        picked = scores[langs[:, :, None], draws[:, None, :]]
        return np.nanmean(picked, axis=2)

    method_seeds = rng.integers(0, method.shape[1], size=(samples, method.shape[1]))
    baseline_seeds = method_seeds if paired_seeds else rng.integers(0, baseline.shape[1],
                                                                    size=(samples, baseline.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate may draw only missing runs: NaN, dropped
        deltas = np.nanmean(seed_means(method, method_seeds) - seed_means(baseline, baseline_seeds), axis=1)
    tail = (1 - level) / 2
    return float(np.nanquantile(deltas, tail)), float(np.nanquantile(deltas, 1 - tail))


def compare_pair(method_rows: pd.DataFrame, baseline_rows: pd.DataFrame, source_lang: str = SOURCE_LANG,
                 seed: int = 0) -> dict:
    """delta, ci_low, ci_high, p_value, n_langs, n_seeds for the rows of two methods at one (task, K)."""
    method, baseline = language_seed_matrix(method_rows), language_seed_matrix(baseline_rows)
    langs = sorted((set(method.index) & set(baseline.index)) - {source_lang})
    paired = list(method.columns) == list(baseline.columns)
    out = {"n_langs": len(langs), "n_seeds": min(method.shape[1], baseline.shape[1]) if langs else 0}
    if not langs:
        return {**out, "delta": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    method, baseline = method.loc[langs].to_numpy(float), baseline.loc[langs].to_numpy(float)
    differences = np.nanmean(method, axis=1) - np.nanmean(baseline, axis=1)
    ci_low, ci_high = bootstrap_interval(method, baseline, paired, seed=seed)
    return {**out, "delta": float(differences.mean()), "ci_low": ci_low, "ci_high": ci_high,
            "p_value": sign_flip_p_value(differences, seed=seed)}


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
