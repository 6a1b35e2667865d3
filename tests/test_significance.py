"""Differences between methods with intervals and p-values (fslib.analysis.significance, analysis.compare_methods and
analysis.main_comparisons), on hand-made result tables with hand-computed answers."""

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fslib.analysis import tables as analysis
from fslib.analysis.significance import holm, impute_additive, paired_test
from fslib.store.results import COLUMNS


def run_rows(method, seed, scores, task="ner", k=5):
    return [{"task": task, "method": method, "k": k, "seed": seed, "lang": lang, "split": "test", "metric": "f1",
             "value": float(value), "epoch": None, "step": None, "run_id": f"{method}-{seed}", "config_hash": "x"}
            for lang, value in scores.items()]


def frame(*groups):
    table = pd.DataFrame([row for group in groups for row in group], columns=COLUMNS)
    table[["epoch", "step"]] = table[["epoch", "step"]].astype("Int64")
    return table


@pytest.fixture
def results():
    # per-language differences of seed means: de +1, fr +2, es +3; English differs by 50 and must not count
    return frame(
        run_rows("ord-FS", 1, {"en": 80, "de": 60, "fr": 50, "es": 70}),
        run_rows("ord-FS", 2, {"en": 80, "de": 62, "fr": 54, "es": 72}),
        run_rows("gradient-co-train", 1, {"en": 30, "de": 60, "fr": 52, "es": 74}),
        run_rows("gradient-co-train", 2, {"en": 30, "de": 64, "fr": 56, "es": 74}),
    )


def test_compare_methods_hand_computed(results):
    """Differences (language x seed): de (0, 2), fr (2, 2), es (4, 2). Language means 1, 2, 3 -> MS_lang = 2;
    seed means 2, 2 -> MS_seed = 0; residuals -1 1 / 0 0 / 1 -1 -> MS_resid = 4 / 2 = 2. Both components are
    estimated as 0, so Var(delta) = MS_resid / 6 = 1/3 on (3-1)(2-1) = 2 df."""
    row = analysis.compare_methods(results, "ner", 5, "gradient-co-train", "ord-FS")
    assert len(row) == 1
    row = row.iloc[0]
    assert row["delta"] == pytest.approx(2.0)  # (1 + 2 + 3) / 3, English left out
    assert (row["n_langs"], row["n_seeds"]) == (3, 2)
    assert (row["var_lang"], row["var_seed"], row["var_resid"], row["df"]) == pytest.approx((0, 0, 2, 2))
    se = (1 / 3) ** 0.5
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(2 / se, 2))
    half = stats.t.ppf(0.975, 2) * se  # 4.303 * 0.577
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((2 - half, 2 + half))


def test_run_effect_shared_by_languages_widens_the_interval():
    """Seed 2 gains 4 points on every language, seed 1 none: MS_seed = 6 * 8 = 48 over 1 df, MS_lang and
    MS_resid 0 -> Var(delta) = (0 + 48 - 0) / 12 = 4 (the run variance 8 over 2 runs) on 1 df."""
    langs = {f"l{i}": 50 + i for i in range(6)}
    results = frame(*[run_rows("ord-FS", s, langs) for s in (1, 2)],
                    *[run_rows("gradient-co-train", s, {lang: v + 4 * (s - 1) for lang, v in langs.items()})
                      for s in (1, 2)])
    row = analysis.compare_methods(results, "ner", 5).iloc[0]
    assert (row["delta"], row["var_seed"], row["var_lang"], row["df"]) == pytest.approx((2, 8, 0, 1))
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(2 / 2, 1))  # = 0.5: six languages, still one run apart


def test_constant_difference_has_a_point_interval():
    base = {"de": 60, "fr": 50, "es": 70, "it": 55}
    results = frame(*[run_rows("ord-FS", seed, {lang: v + seed for lang, v in base.items()}) for seed in (1, 2, 3)],
                    *[run_rows("naive-co-train", seed, {lang: v + seed + 1.5 for lang, v in base.items()})
                      for seed in (1, 2, 3)])
    row = analysis.compare_methods(results, "ner", 5, "naive-co-train", "ord-FS").iloc[0]
    assert row["delta"] == pytest.approx(1.5)
    assert row["ci_low"] == pytest.approx(1.5) and row["ci_high"] == pytest.approx(1.5)
    assert row["p_value"] == 0.0  # no variation at all


def test_missing_cell_is_filled_by_the_additive_model():
    """An additive table with one hole: the filled value makes the table exactly additive, and the residual
    degrees of freedom lose one."""
    table = np.array([[1.0, 2.0, 4.0], [3.0, 4.0, 6.0], [0.0, np.nan, 3.0]])
    filled, holes = impute_additive(table)
    assert holes == 1 and filled[2, 1] == pytest.approx(1.0)
    result = paired_test(filled + np.array([[0.5, -0.5, 0], [-0.5, 0.5, 0], [0, 0, 0]]), missing_cells=holes)
    complete = paired_test(filled + np.array([[0.5, -0.5, 0], [-0.5, 0.5, 0], [0, 0, 0]]))
    assert result["var_resid"] == pytest.approx(complete["var_resid"] * 4 / 3)


def test_no_difference_is_not_significant():
    rng = np.random.default_rng(0)
    scores = {lang: 60 + rng.normal() for lang in "ab cd ef gh ij kl".split()}
    results = frame(*[run_rows(m, s, {lang: v + rng.normal(scale=0.5) for lang, v in scores.items()})
                      for m in ("ord-FS", "gradient-co-train") for s in (1, 2, 3)])
    row = analysis.compare_methods(results, "ner", 5).iloc[0]
    assert row["ci_low"] < 0 < row["ci_high"]
    assert row["p_value"] > 0.05


def test_one_row_per_k_and_task_when_not_given(results):
    more = frame(*[run_rows(m, s, {"de": 40 + s + (m == "ord-FS"), "fr": 45}, task="pos", k=k)
                   for m in ("ord-FS", "gradient-co-train") for s in (1, 2) for k in (1, 5)])
    table = analysis.compare_methods(pd.concat([results, more], ignore_index=True))
    assert list(zip(table["task"], table["k"])) == [("ner", 5), ("pos", 1), ("pos", 5)]
    assert table.loc[1, "delta"] == pytest.approx(-0.5)  # de -1, fr 0
    assert list(table.columns) == ["task", "k", "method", "baseline", "delta", "ci_low", "ci_high", "p_value",
                                   "n_langs", "n_seeds", "var_lang", "var_seed", "var_resid", "df"]


def test_zero_shot_baseline_is_read_at_k0(results):
    zero = frame(run_rows("zero-shot", 1, {"en": 80, "de": 50, "fr": 50, "es": 50}, k=0))
    row = analysis.compare_methods(pd.concat([results, zero], ignore_index=True), "ner", 5, "gradient-co-train",
                                   "zero-shot").iloc[0]
    assert row["delta"] == pytest.approx((12 + 4 + 24) / 3)
    assert row["n_seeds"] == 1


def test_unpaired_runs_without_any_variation_give_a_point_interval():
    """One zero-shot run against two runs scoring the same: unpaired, every variance 0 (this divided 0 by 0)."""
    scores = {"de": 50, "fr": 60}
    results = frame(run_rows("zero-shot", 1, scores, k=0), *[run_rows("ord-FS", s, scores) for s in (1, 2)])
    row = analysis.compare_methods(results, "ner", 5, "ord-FS", "zero-shot").iloc[0]
    assert (row["delta"], row["ci_low"], row["ci_high"], row["p_value"]) == (0, 0, 0, 1)


def test_unknown_method_is_named(results):
    with pytest.raises(ValueError, match="'co-FT'.*ord-FS"):
        analysis.compare_methods(results, "ner", 5, "co-FT")


def test_holm_hand_computed():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan])
    assert holm([0.5, 0.9])[1] == 1.0


def test_main_comparisons_against_both_baselines(results):
    naive = frame(run_rows("naive-co-train", 1, {"en": 80, "de": 61, "fr": 52, "es": 71}),
                  run_rows("naive-co-train", 2, {"en": 80, "de": 63, "fr": 56, "es": 73}))
    table = analysis.main_comparisons(pd.concat([results, naive], ignore_index=True))
    pairs = list(zip(table["baseline"], table["method"]))
    assert pairs == [("ord-FS", "naive-co-train"), ("ord-FS", "gradient-co-train"),
                     ("naive-co-train", "ord-FS"), ("naive-co-train", "gradient-co-train")]
    np.testing.assert_allclose(table["p_holm"], holm(table["p_value"]))
    assert not table["significant"].any()


def test_styled_comparisons_mark_what_survives_the_correction():
    from fslib.analysis.plots import style_comparisons

    langs = [f"l{i}" for i in range(8)]
    results = frame(*[run_rows("ord-FS", s, {lang: 50 + i for i, lang in enumerate(langs)}) for s in (1, 2)],
                    *[run_rows("gradient-co-train", s, {lang: 53 + i + 0.1 * s for i, lang in enumerate(langs)})
                      for s in (1, 2)])
    table = analysis.main_comparisons(results)
    # 8 languages all gaining 3 + 0.1 * seed: only the run effect varies, se = sd of the 2 run means / sqrt(2)
    # = 0.05 on 1 df -> 3.15 +- 12.706 * 0.05
    assert table["significant"].tolist() == [True]
    html = style_comparisons(table).to_html()
    assert re.search(r"\+3\.15 \[\+2\.51, \+3\.79\]\*", html) and "font-weight: bold" in html
