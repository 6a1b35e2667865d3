"""How much of a per-language score is test-set noise: a percentile bootstrap over the test sentences (examples)
of the final predictions a run keeps (`fslib.store.run_files.read_predictions`).

Each language's test set is resampled with replacement, `samples` times, and the task's headline metric is
recomputed on each replicate from per-example counts, exactly as `fslib.engine.metrics` computes it on the whole set:

- tagging (POS, NER): seqeval's micro F1 = 2 * correct chunks / (predicted chunks + gold chunks), the chunks of
  each sentence counted once (seqeval never lets a chunk cross a sentence boundary);
- TyDiQA: the mean over questions of the best SQuAD F1 over the gold answers;
- XNLI: accuracy.

It assumes the test sentences are exchangeable draws from the language's population of sentences; the interval
says nothing about other runs (seeds) or other shots.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from fslib.core.tasks import get_task
from fslib.engine.metrics import answer_f1_em

SAMPLES = 2000
COLUMNS = ["lang", "n", "score", "ci_low", "ci_high"]


def example_counts(records: list[dict], kind: str) -> np.ndarray:
    """Per example, the counts the metric sums: (correct, predicted, gold) chunks for tagging, (score, 1) else."""
    if kind == "tagging":
        from seqeval.metrics.sequence_labeling import get_entities

        counts = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns that POS tags "seem not to be NE tags"
            for record in records:
                gold, pred = set(get_entities(list(record["gold"]))), set(get_entities(list(record["pred"])))
                counts.append((len(gold & pred), len(pred), len(gold)))
        return np.array(counts, dtype=float).reshape(-1, 3)
    if kind == "qa":
        return np.array([(answer_f1_em(r["pred"], list(r["gold"]))[0], 1.0) for r in records]).reshape(-1, 2)
    return np.array([(float(r["gold"] == r["pred"]), 1.0) for r in records]).reshape(-1, 2)


def score_from_sums(sums: np.ndarray, kind: str) -> np.ndarray:
    """The metric (0-100) from summed counts (last axis)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "tagging":
            return np.nan_to_num(100.0 * 2 * sums[..., 0] / (sums[..., 1] + sums[..., 2]))
        return 100.0 * sums[..., 0] / sums[..., 1]


def per_language_intervals(predictions: list[dict], task: str, samples: int = SAMPLES, level: float = 0.95,
                       seed: int = 0) -> pd.DataFrame:
    """Per language of `predictions`: n test examples, the score and its percentile bootstrap interval."""
    kind = get_task(task).kind
    rng = np.random.default_rng(seed)
    by_lang: dict[str, list[dict]] = {}
    for record in predictions:
        by_lang.setdefault(record["lang"], []).append(record)
    rows = []
    for lang, records in by_lang.items():
        counts = example_counts(records, kind)
        draws = rng.integers(0, len(records), size=(samples, len(records)))
        replicates = score_from_sums(counts[draws].sum(axis=1), kind)
        tail = (1 - level) / 2
        rows.append({"lang": lang, "n": len(records), "score": float(score_from_sums(counts.sum(axis=0), kind)),
                     "ci_low": float(np.quantile(replicates, tail)),
                     "ci_high": float(np.quantile(replicates, 1 - tail))})
    return pd.DataFrame(rows, columns=COLUMNS)
