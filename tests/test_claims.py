"""fslib.analysis.claims on hand-made rows: the paired differences, the per-K crossed-scheme verdicts with Holm across
the
table and the distance claim give the values computed by hand."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fslib.analysis.claims import CLAIMS_RULE, claims_table, distance_claim, paired_claim, paired_differences
from fslib.analysis.significance import holm


def rows(scores: dict) -> pd.DataFrame:
    """{(method, k, seed, lang): f1} -> result rows on the test split."""
    return pd.DataFrame([{"task": "pos", "method": m, "k": k, "seed": s, "lang": lang, "split": "test",
                          "metric": "f1", "value": v} for (m, k, s, lang), v in scores.items()])


LANGS = ["de", "fr", "ru", "hi", "ja", "ar"]  # de fr Latin like en; the others not


def frame(gain_of, ks=(5,)) -> pd.DataFrame:
    scores = {}
    for k in ks:
        for seed in (1, 2):
            for i, lang in enumerate(LANGS):
                base = 50 + i
                scores[("ord-FS", k, seed, lang)] = base
                scores[("gradient-co-train", k, seed, lang)] = base + gain_of(lang, seed) * (1 if k == 5 else -1)
            scores[("ord-FS", k, seed, "en")] = 90  # the source is never a pair
            scores[("gradient-co-train", k, seed, "en")] = 10
    return rows(scores)


def spread(lang, seed):
    """Gains 1.5, 1.7, ..., 2.5 over the six languages, the same in both runs."""
    return 2 + 0.2 * (LANGS.index(lang) - 2.5)


def test_paired_differences_pair_by_language_seed_and_k():
    pairs = paired_differences(frame(lambda lang, seed: seed), "gradient-co-train", "ord-FS", "pos")
    assert len(pairs) == 12 and "en" not in set(pairs["lang"])
    assert sorted(pairs["diff"]) == [1] * 6 + [2] * 6


def test_gain_that_varies_over_languages_only_is_tested_over_languages():
    """No run effect and no residual: Var(delta) = var over languages (0.04 * 3.5 = 0.14) / 6 on 5 df."""
    row = paired_claim(frame(spread), "c", "gradient-co-train", "ord-FS", "pos", 5)
    assert row["mean_diff"] == pytest.approx(2.0) and row["wins"] == 6 and (row["n_langs"], row["n_seeds"]) == (6, 2)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(2.0 / (0.14 / 6) ** 0.5, 5))


def test_gain_of_one_run_only_is_not_evidence():
    """Run 2 gains 2 points on every language, run 1 none: one shared run effect, not six independent wins."""
    table = claims_table(frame(lambda lang, seed: 2.0 * (seed - 1)), "pos").iloc[0]
    assert table["mean_diff"] == pytest.approx(1.0)
    assert table["p_value"] == pytest.approx(0.5)  # t = 1 / (1 / 1) on 1 df
    assert table["verdict"] == "inconclusive"


def test_per_k_verdicts_and_holm_across_the_table():
    """The same gain at K=5 and the same loss at K=10: two rows, holds and does not hold, each p Holm-corrected
    over all the table's tested rows."""
    table = claims_table(frame(spread, ks=(5, 10)), "pos")
    first = table[table["claim"] == "co-training beats two-step ord-FS"].set_index("k")
    assert first.loc[5, "verdict"] == "holds" and first.loc[10, "verdict"] == "does not hold"
    assert first.loc[10, "mean_diff"] == pytest.approx(-2.0)
    np.testing.assert_allclose(table["p_holm"], holm(table["p_value"]))
    tested = table["p_value"].notna().sum()
    assert tested == 4  # the claim at two K and the distance claim at two K; the others were not run
    assert first.loc[5, "p_holm"] == pytest.approx(min(1.0, tested * first.loc[5, "p_value"]))


def test_mixed_signs_are_inconclusive():
    mixed = claims_table(frame(lambda lang, seed: 1 if seed == 1 else -1), "pos").iloc[0]
    assert mixed["verdict"] == "inconclusive" and mixed["mean_diff"] == 0


def test_distance_claim_compares_other_script_targets_with_latin_ones():
    far_gains = frame(lambda lang, seed: 1 + LANGS.index(lang) if lang in ("de", "fr") else 5 + LANGS.index(lang))
    claim = distance_claim(far_gains, "pos", 5)
    assert claim["better"] == "far (ar, hi, ja, ru)" and claim["worse"] == "near (de, fr)"
    assert claim["mean_better"] == pytest.approx(8.5) and claim["mean_worse"] == 1.5
    # Welch: far 7, 8, 9, 10 (variance 5/3), near 1, 2 (variance 1/2)
    se2 = (5 / 3) / 4 + 0.5 / 2
    df = se2 ** 2 / (((5 / 3) / 4) ** 2 / 3 + (0.5 / 2) ** 2 / 1)
    assert claim["p_value"] == pytest.approx(2 * stats.t.sf(7 / se2 ** 0.5, df))


def test_claims_table_without_some_methods():
    table = claims_table(frame(spread), "pos")
    assert table["verdict"].iloc[0] == "holds"
    co_ft = table.set_index("worse").loc["co-FT"]
    assert co_ft["n_langs"] == 0 and pd.isna(co_ft["k"]) and co_ft["verdict"] == "inconclusive"


def test_markdown_and_command_line(tmp_path, capsys):
    from fslib.analysis.claims import claims_markdown, main

    table = claims_table(frame(spread), "pos")
    text = claims_markdown(table)
    assert text.splitlines()[2].startswith("| co-training beats two-step ord-FS | 5 | gradient-co-train")
    assert text.splitlines()[-1] == CLAIMS_RULE.format(alpha=0.05, min_langs=3)
    frame(spread).assign(epoch=None, step=None, run_id="r", config_hash="h").to_csv(
        tmp_path / "results.csv", index=False)
    main([str(tmp_path / "results.csv"), "--csv", str(tmp_path / "claims.csv")])
    assert "**holds**" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "claims.csv")["verdict"].iloc[0] == "holds"


def test_rerun_agreement_by_hand():
    """Shipped gradient-co-train: per-seed language means 53.5 and 54.5 (sd 0.707 per side: SE 0.707, 2 SE 1.41),
    so a rerun 0.1 higher lies within seed noise and one 5 higher does not; ord-FS has no seed variation, so any
    shift is outside it. An exact copy is identical."""
    from fslib.analysis.claims import rerun_agreement

    shipped = frame(lambda lang, seed: seed)
    close = shipped.assign(value=shipped["value"] + 0.1)
    far = shipped.assign(value=shipped["value"] + 5.0)
    same = rerun_agreement(shipped, shipped.copy()).set_index("method")
    assert same.loc["gradient-co-train", "diff"] == 0 and same["within_noise"].all()
    assert (same["identical_rows"] == 1.0).all()
    assert same.loc["gradient-co-train", "shipped_mean"] == pytest.approx(54.0)  # 52.5 + mean gain 1.5
    near = rerun_agreement(shipped, close).set_index("method")["within_noise"]
    assert near["gradient-co-train"] and not near["ord-FS"]
    moved = rerun_agreement(shipped, far).set_index("method")
    assert not moved["within_noise"].any() and moved.loc["ord-FS", "diff"] == pytest.approx(5.0)
    assert (moved["identical_rows"] == 0.0).all()
