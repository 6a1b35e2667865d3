"""fslib.analysis.claims on hand-made rows: the paired differences, the Wilcoxon verdicts and the distance claim give
the values computed by hand."""

import pandas as pd
import pytest

from fslib.analysis.claims import claims_table, distance_claim, paired_claim, paired_differences


def rows(scores: dict) -> pd.DataFrame:
    """{(method, k, seed, lang): f1} -> result rows on the test split."""
    return pd.DataFrame([{"task": "pos", "method": m, "k": k, "seed": s, "lang": lang, "split": "test",
                          "metric": "f1", "value": v} for (m, k, s, lang), v in scores.items()])


LANGS = ["de", "fr", "ru", "hi", "ja", "ar"]  # de fr Latin like en; the others not


def frame(gain_of) -> pd.DataFrame:
    scores = {}
    for seed in (1, 2):
        for i, lang in enumerate(LANGS):
            base = 50 + i
            scores[("ord-FS", 5, seed, lang)] = base
            scores[("gradient-co-train", 5, seed, lang)] = base + gain_of(lang, seed)
        scores[("ord-FS", 5, seed, "en")] = 90  # the source is never a pair
        scores[("gradient-co-train", 5, seed, "en")] = 10
    return rows(scores)


def test_paired_differences_pair_by_language_seed_and_k():
    pairs = paired_differences(frame(lambda lang, seed: seed), "gradient-co-train", "ord-FS", "pos")
    assert len(pairs) == 12 and "en" not in set(pairs["lang"])
    assert sorted(pairs["diff"]) == [1] * 6 + [2] * 6


def test_consistent_gain_holds_and_consistent_loss_does_not():
    up = paired_claim(frame(lambda lang, seed: 1 + seed), "c", "gradient-co-train", "ord-FS", "pos")
    assert up["verdict"] == "holds" and up["wins"] == 12 and up["mean_diff"] == pytest.approx(2.5)
    # 12 positive differences: the exact one-sided signed-rank p-value is 1 / 2**12
    assert up["p_value"] == pytest.approx(1 / 2**12)
    down = paired_claim(frame(lambda lang, seed: -1.0 - seed), "c", "gradient-co-train", "ord-FS", "pos")
    assert down["verdict"] == "does not hold" and down["wins"] == 0


def test_mixed_signs_are_inconclusive():
    mixed = paired_claim(frame(lambda lang, seed: 1 if seed == 1 else -1), "c", "gradient-co-train", "ord-FS", "pos")
    assert mixed["verdict"] == "inconclusive" and mixed["mean_diff"] == 0


def test_distance_claim_compares_other_script_targets_with_latin_ones():
    far_gains = frame(lambda lang, seed: 1 + LANGS.index(lang) if lang in ("de", "fr") else 5 + LANGS.index(lang))
    claim = distance_claim(far_gains, "pos")
    assert claim["better"] == "far (ar, hi, ja, ru)" and claim["worse"] == "near (de, fr)"
    assert claim["mean_better"] == pytest.approx(5 + (2 + 3 + 4 + 5) / 4) and claim["mean_worse"] == 1.5
    assert claim["p_value"] == pytest.approx(1 / 15)  # the best of C(6, 2) = 15 orderings, one-sided
    assert claim["verdict"] == "inconclusive"  # six languages cannot reach p < 0.05 this way


def test_claims_table_without_some_methods():
    table = claims_table(frame(lambda lang, seed: 2), "pos")
    assert list(table["verdict"].iloc[:1]) == ["holds"]
    co_ft = table.set_index("worse").loc["co-FT"]
    assert co_ft["n"] == 0 and co_ft["verdict"] == "inconclusive"


def test_markdown_and_command_line(tmp_path, capsys):
    from fslib.analysis.claims import claims_markdown, main

    table = claims_table(frame(lambda lang, seed: 2), "pos")
    assert claims_markdown(table).splitlines()[2].startswith("| co-training beats two-step ord-FS | gradient-co-train")
    frame(lambda lang, seed: 2).assign(epoch=None, step=None, run_id="r", config_hash="h").to_csv(
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
