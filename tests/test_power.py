"""fslib.analysis.power: the printed detectable effect is detected about 80% of the time by the kit's own test
(simulation, 4000 datasets per shape: the standard error of a detection rate of 0.8 is 0.006, so [0.7, 0.9] is
16 standard errors wide either side), and the grid's comparisons and needs are read right."""

import numpy as np
import pytest

from fslib.analysis.power import (
    detectable_effect,
    expected_df,
    expected_half_width,
    grid_comparisons,
    power_at,
    power_table,
)
from fslib.analysis.significance import paired_test
from fslib.store.config import RunConfig

# (languages, seeds, var_lang, var_seed, var_resid)
SHAPES = [(12, 3, 0.5, 0.6, 7.3), (40, 5, 1.0, 0.36, 4.0), (12, 3, 1.0, 1.0, 1.0), (34, 5, 0.82, 0.09, 0.12)]


@pytest.mark.parametrize("langs, seeds, var_lang, var_seed, var_resid", SHAPES)
def test_detectable_effect_is_detected_80_percent_of_the_time(langs, seeds, var_lang, var_seed, var_resid):
    rng = np.random.default_rng(30)
    mu = detectable_effect(var_lang, var_seed, var_resid, langs, seeds)
    n = 4000
    data = (mu + rng.normal(0, var_lang ** 0.5, (n, langs, 1)) + rng.normal(0, var_seed ** 0.5, (n, 1, seeds))
            + rng.normal(0, var_resid ** 0.5, (n, langs, seeds)))
    detected = float(np.mean(paired_test(data)["p_value"] < 0.05))
    assert 0.7 <= detected <= 0.9, f"detected {detected:.3f} at the printed effect {mu:.3f}"


@pytest.mark.parametrize("langs, seeds, var_lang, var_seed, var_resid", SHAPES)
def test_power_at_an_effect_is_the_simulated_rejection_rate(langs, seeds, var_lang, var_seed, var_resid):
    """The claims table's power column: at half the detectable effect the kit's test rejects as often as power_at
    says (simulation, 4000 datasets: within 0.05) where the expected df is 5 or more, and never more often than it
    rejects with fewer (few-seed run variance is often underestimated: the test then rejects more); at no effect
    alpha."""
    rng = np.random.default_rng(32)
    effect = detectable_effect(var_lang, var_seed, var_resid, langs, seeds) / 2
    n = 4000
    data = (effect + rng.normal(0, var_lang ** 0.5, (n, langs, 1)) + rng.normal(0, var_seed ** 0.5, (n, 1, seeds))
            + rng.normal(0, var_resid ** 0.5, (n, langs, seeds)))
    rejected = float(np.mean(paired_test(data)["p_value"] < 0.05))
    promised = power_at(effect, var_lang, var_seed, var_resid, langs, seeds)
    assert promised <= rejected + 0.02
    if expected_df(var_lang, var_seed, var_resid, langs, seeds) >= 5:
        assert promised == pytest.approx(rejected, abs=0.05)
    assert power_at(0.0, var_lang, var_seed, var_resid, langs, seeds) == pytest.approx(0.05, abs=1e-9)
    assert np.isnan(power_at(float("nan"), var_lang, var_seed, var_resid, langs, seeds))


@pytest.mark.parametrize("langs, seeds, var_lang, var_seed, var_resid", SHAPES + [(13, 8, 0.1, 0.2, 1.8)])
def test_expected_half_width_is_what_the_test_reports(langs, seeds, var_lang, var_seed, var_resid):
    """The printed half-width (t at the expected df times the true standard error) against the intervals the kit's
    own test reports (simulation, 4000 datasets): their mean half-width is within 10% of it where the expected df
    is 5 or more, and never above it by more than 5% (with fewer df the promise errs on the wide side: a few-seed
    run variance is often underestimated); the intervals cover the truth about 95% of the time."""
    rng = np.random.default_rng(31)
    n = 4000
    data = (rng.normal(0, var_lang ** 0.5, (n, langs, 1)) + rng.normal(0, var_seed ** 0.5, (n, 1, seeds))
            + rng.normal(0, var_resid ** 0.5, (n, langs, seeds)))
    result = paired_test(data)
    reported = float(np.mean((result["ci_high"] - result["ci_low"]) / 2))
    promised = expected_half_width(var_lang, var_seed, var_resid, langs, seeds)
    assert reported <= 1.05 * promised
    if expected_df(var_lang, var_seed, var_resid, langs, seeds) >= 5:
        assert promised == pytest.approx(reported, rel=0.10)
    assert 0.93 <= np.mean((result["ci_low"] < 0) & (result["ci_high"] > 0)) <= 0.985


def test_half_width_by_hand():
    """One component only: the t quantile on that component's df times its standard error."""
    from scipy import stats

    assert expected_half_width(0.0, 0.0, 4.0, 5, 1) == pytest.approx(stats.t.ppf(0.975, 4) * (4.0 / 5) ** 0.5)
    assert expected_half_width(2.0, 0.0, 0.0, 10, 3) == pytest.approx(stats.t.ppf(0.975, 9) * (2.0 / 10) ** 0.5)


def test_more_seeds_languages_or_sentences_never_need_a_larger_effect():
    base = detectable_effect(1.0, 1.0, 4.0, 12, 3)
    assert detectable_effect(1.0, 1.0, 4.0, 12, 6) < base and detectable_effect(1.0, 1.0, 4.0, 24, 3) < base
    assert detectable_effect(1.0, 1.0, 2.0, 12, 3) < base


def configs(seeds, langs, methods=("ord-FS", "naive-co-train", "gradient-co-train"), n_test=16):
    return [RunConfig(task="pos", method=method, k=5, seed=seed, model="m", languages=["en", *langs],
                      max_eval_examples=n_test) for method in methods for seed in seeds]


def test_grid_comparisons_count_targets_and_shared_seeds():
    table = grid_comparisons(configs([1, 2, 3], ["de", "fr", "ja"]))
    pair = table[(table["method"] == "gradient-co-train") & (table["baseline"] == "naive-co-train")].iloc[0]
    assert (pair["n_langs"], pair["n_seeds"], pair["n_test"]) == (3, 3, 16)  # English is not a target
    assert len(table) == 4  # gradient and naive vs ord-FS, gradient and ord-FS vs naive


def test_power_table_needs_reach_the_paper_effect():
    """The paper's gradient- vs naive-co-train POS effect at K=5 (+0.69) on 12 languages x 5 seeds: the printed
    languages needed detect it and one fewer does not; seeds alone cannot (the language term stays)."""
    row = power_table(configs([1, 2, 3, 4, 5], [f"l{i}" for i in range(12)], n_test=1000)).set_index(
        ["method", "baseline"]).loc[("gradient-co-train", "naive-co-train")]
    assert row["paper_effect"] == pytest.approx(83.48 - 82.79)
    assert row["source"] == "paper" and row["detectable"] > row["paper_effect"]
    assert row["seeds_needed"] is None
    langs = int(row["languages_needed"])
    components = (row["var_lang"], row["var_seed"], row["var_resid"])
    fewer = detectable_effect(*components, langs - 1, 5)
    assert detectable_effect(*components, langs, 5) <= row["paper_effect"] < fewer
