"""Differences between methods with intervals and p-values (fslib.analysis.significance, analysis.compare_methods and
analysis.main_comparisons), on hand-made result tables with hand-computed answers."""

import re

import numpy as np
import pandas as pd
import pytest

from fslib.analysis import tables as analysis
from fslib.analysis.significance import holm, sign_flip_p_value
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
    row = analysis.compare_methods(results, "ner", 5, "gradient-co-train", "ord-FS")
    assert len(row) == 1
    row = row.iloc[0]
    assert row["delta"] == pytest.approx(2.0)  # (1 + 2 + 3) / 3, English left out
    assert (row["n_langs"], row["n_seeds"]) == (3, 2)
    # all three differences positive: of the 8 sign patterns only +++ and --- reach |mean| = 2
    assert row["p_value"] == pytest.approx(2 / 8)
    # every bootstrap replicate averages per-language differences (each a mean over drawn seeds), so the interval
    # lies inside the range of seed-level differences and contains delta
    assert -1.0 <= row["ci_low"] < 2.0 < row["ci_high"] <= 4.0


def test_constant_difference_has_a_point_interval():
    base = {"de": 60, "fr": 50, "es": 70, "it": 55}
    results = frame(*[run_rows("ord-FS", seed, {lang: v + seed for lang, v in base.items()}) for seed in (1, 2, 3)],
                    *[run_rows("naive-co-train", seed, {lang: v + seed + 1.5 for lang, v in base.items()})
                      for seed in (1, 2, 3)])
    row = analysis.compare_methods(results, "ner", 5, "naive-co-train", "ord-FS").iloc[0]
    assert row["delta"] == pytest.approx(1.5)
    assert row["ci_low"] == pytest.approx(1.5) and row["ci_high"] == pytest.approx(1.5)
    assert row["p_value"] == pytest.approx(2 / 16)  # 4 languages, all the same sign


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
                                   "n_langs", "n_seeds"]


def test_zero_shot_baseline_is_read_at_k0(results):
    zero = frame(run_rows("zero-shot", 1, {"en": 80, "de": 50, "fr": 50, "es": 50}, k=0))
    row = analysis.compare_methods(pd.concat([results, zero], ignore_index=True), "ner", 5, "gradient-co-train",
                                   "zero-shot").iloc[0]
    assert row["delta"] == pytest.approx((12 + 4 + 24) / 3)
    assert row["n_seeds"] == 1


def test_unknown_method_is_named(results):
    with pytest.raises(ValueError, match="'co-FT'.*ord-FS"):
        analysis.compare_methods(results, "ner", 5, "co-FT")


def test_sign_flip_exact_and_monte_carlo():
    assert sign_flip_p_value([1.0, -1.0]) == pytest.approx(1.0)
    # 3 positive, 1 of 4 flipped: |mean| of [2, 2, 2, -2] is 1; patterns reaching >= 1: all with 3 or 4 equal signs
    assert sign_flip_p_value([2.0, 2.0, 2.0, -2.0]) == pytest.approx(10 / 16)
    assert sign_flip_p_value(np.ones(20)) < 1e-3  # beyond 16 languages: Monte Carlo, exact value 2/2^20


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
    assert not table["significant"].any()  # 3 languages: p >= 1/4 at best


def test_styled_comparisons_mark_what_survives_the_correction():
    from fslib.analysis.plots import style_comparisons

    langs = [f"l{i}" for i in range(8)]
    results = frame(*[run_rows("ord-FS", s, {lang: 50 + i for i, lang in enumerate(langs)}) for s in (1, 2)],
                    *[run_rows("gradient-co-train", s, {lang: 53 + i + 0.1 * s for i, lang in enumerate(langs)})
                      for s in (1, 2)])
    table = analysis.main_comparisons(results)
    assert table["significant"].tolist() == [True]  # 8 languages all gaining: p = 2/256
    html = style_comparisons(table).to_html()
    assert re.search(r"\+3\.15 \[\+3\.1\d, \+3\.\d\d\]\*", html) and "font-weight: bold" in html
