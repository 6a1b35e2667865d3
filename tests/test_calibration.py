"""Calibration of fslib.analysis.significance by simulation, where the truth is known.

Per-(language, seed) differences d_ls = mu + a_l + b_s + e_ls are drawn with normal language effects, run
effects shared by all languages of a run, and residuals. Under the null (mu = 0) a calibrated scheme rejects at
0.05 in about 5% of the datasets and its 95% interval covers mu in about 95%; with a large effect it must reject
(so that a scheme that never rejects fails).

How many simulations: 4000 datasets per shape. The standard error of a rejection rate of 0.05 is then
sqrt(0.05 * 0.95 / 4000) = 0.0034, so the window [0.02, 0.08] lies 8.7 standard errors either side of 0.05: a
calibrated scheme cannot leave it by chance, and a scheme whose true rate is outside [0.03, 0.07] is caught (that
is 5.9 standard errors inside the window's edge). The same holds for coverage >= 0.90 (true 0.95, 15 standard
errors). The former scheme (a sign-flip test over languages that ignored the run effect, planted back) rejected
in 35%, 21% and 17% of null datasets of the second, third and fourth shapes (300 datasets each), and its
interval covered 0 in 80% of the second. Generator seeds are fixed, so the test is deterministic.
"""

import numpy as np
import pytest

from fslib.analysis.significance import impute_additive, paired_test, unpaired_test

SIMULATIONS = 4000
# (name, languages, seeds, language sd, run sd, residual sd)
SHAPES = [
    ("no run effect, 12 x 3", 12, 3, 1.0, 0.0, 1.0),
    ("run sd = residual sd, 12 x 3", 12, 3, 1.0, 1.0, 1.0),
    ("NER shape, 40 x 5, run sd 0.6, residual 2", 40, 5, 1.0, 0.6, 2.0),
    # results/real-pos: 12 targets x 3 seeds; components estimated there for gradient- vs naive-co-train at K=5
    ("real-POS shape, 12 x 3", 12, 3, 0.5, 0.8, 2.4),
]


def simulate(rng, n, langs, seeds, sd_lang, sd_run, sd_resid, mu=0.0):
    return (mu + rng.normal(0, sd_lang, (n, langs, 1)) + rng.normal(0, sd_run, (n, 1, seeds))
            + rng.normal(0, sd_resid, (n, langs, seeds)))


def true_se(langs, seeds, sd_lang, sd_run, sd_resid):
    return (sd_lang ** 2 / langs + sd_run ** 2 / seeds + sd_resid ** 2 / (langs * seeds)) ** 0.5


def rates(results: dict, mu: float) -> tuple[float, float]:
    rejected = np.mean(np.asarray(results["p_value"]) < 0.05)
    covered = np.mean((np.asarray(results["ci_low"]) <= mu) & (mu <= np.asarray(results["ci_high"])))
    return float(rejected), float(covered)


@pytest.mark.parametrize("name, langs, seeds, sd_lang, sd_run, sd_resid", SHAPES, ids=[s[0] for s in SHAPES])
def test_paired_scheme_is_calibrated_under_the_null(name, langs, seeds, sd_lang, sd_run, sd_resid):
    rng = np.random.default_rng(20)
    results = paired_test(simulate(rng, SIMULATIONS, langs, seeds, sd_lang, sd_run, sd_resid))
    false_positives, coverage = rates(results, 0.0)
    assert 0.02 <= false_positives <= 0.08, f"{name}: false-positive rate {false_positives:.3f}"
    assert coverage >= 0.90, f"{name}: coverage {coverage:.3f}"


@pytest.mark.parametrize("name, langs, seeds, sd_lang, sd_run, sd_resid", SHAPES, ids=[s[0] for s in SHAPES])
def test_paired_scheme_detects_a_large_effect(name, langs, seeds, sd_lang, sd_run, sd_resid):
    """An effect of 8 standard errors of delta (3 seeds leave about 2-3 df, whose t quantile is 3-4)."""
    rng = np.random.default_rng(21)
    mu = 8 * true_se(langs, seeds, sd_lang, sd_run, sd_resid)
    results = paired_test(simulate(rng, SIMULATIONS, langs, seeds, sd_lang, sd_run, sd_resid, mu))
    power, coverage = rates(results, mu)
    assert power >= 0.8, f"{name}: detected {power:.3f}"
    assert coverage >= 0.90, f"{name}: coverage {coverage:.3f}"


def test_missing_cells_stay_calibrated():
    """Real-POS shape with about 10% of the (language, seed) cells missing (a run or a language not scored): the
    filled table makes the test conservative (about 1% false positives), never liberal."""
    rng = np.random.default_rng(22)
    tables = simulate(rng, 2000, 12, 3, 0.5, 0.8, 2.4)
    tables[rng.random(tables.shape) < 0.1] = np.nan
    outcomes = []
    for table in tables:
        table = table[~np.isnan(table).all(axis=1)][:, ~np.isnan(table).all(axis=0)]
        filled, holes = impute_additive(table)
        outcomes.append(paired_test(filled, missing_cells=holes))
    false_positives, coverage = rates({key: [o[key] for o in outcomes] for key in outcomes[0]}, 0.0)
    assert false_positives <= 0.08 and coverage >= 0.90, (false_positives, coverage)


def test_unpaired_runs_stay_calibrated():
    """A method with 3 runs against a baseline with 5 other runs: each has its own run effects (sd 1), a shared
    language difficulty (cancels) and a language x method effect (sd 1)."""
    rng = np.random.default_rng(23)
    outcomes = []
    for _ in range(2000):
        interaction = rng.normal(0, 1, (12, 1))
        method = interaction + rng.normal(0, 1, (1, 3)) + rng.normal(0, 1.5, (12, 3))
        baseline = rng.normal(0, 1, (1, 5)) + rng.normal(0, 1.5, (12, 5))
        outcomes.append(unpaired_test(method, baseline))
    false_positives, coverage = rates({key: [o[key] for o in outcomes] for key in outcomes[0]}, 0.0)
    assert 0.02 <= false_positives <= 0.08 and coverage >= 0.90, (false_positives, coverage)
