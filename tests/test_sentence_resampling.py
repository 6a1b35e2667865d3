"""fslib.analysis.sentence_resampling: the whole-set score equals fslib.engine.metrics' on real kept predictions'
format, and the
bootstrap interval narrows as the test set grows (about 1/sqrt(n))."""

import numpy as np
import pytest

from fslib.analysis.sentence_resampling import per_language_intervals as intervals
from fslib.engine.metrics import accuracy, tagging_f1


def tagged(n, seed=0):
    rng = np.random.default_rng(seed)
    tags = ["NOUN", "VERB", "DET", "ADP"]
    records = []
    for _ in range(n):
        gold = list(rng.choice(tags, size=8))
        pred = [tag if rng.random() < 0.8 else str(rng.choice(tags)) for tag in gold]
        records.append({"lang": "de", "tokens": ["w"] * 8, "gold": gold, "pred": pred})
    return records


def test_whole_set_score_is_the_metric():
    records = tagged(40)
    row = intervals(records, "pos", samples=200).iloc[0]
    assert row["score"] == pytest.approx(tagging_f1([r["gold"] for r in records], [r["pred"] for r in records]))
    assert row["ci_low"] < row["score"] < row["ci_high"]
    labels = [{"lang": "fr", "gold": g, "pred": p} for g, p in zip("aabbc", "abbbc")]
    expected = accuracy(list("aabbc"), list("abbbc"))
    assert intervals(labels, "xnli", samples=50).iloc[0]["score"] == pytest.approx(expected)


def test_interval_narrows_with_more_sentences():
    small = intervals(tagged(16), "pos").iloc[0]
    large = intervals(tagged(256, seed=1), "pos").iloc[0]
    width = lambda row: row["ci_high"] - row["ci_low"]  # noqa: E731
    assert 2.5 < width(small) / width(large) < 6.5  # sqrt(256 / 16) = 4
