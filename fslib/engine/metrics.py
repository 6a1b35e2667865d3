"""Task metrics, all on a 0-100 scale, computed as XTREME computes them.

- tagging: seqeval's F1 on the tag sequences. For NER that is entity F1 over BIO chunks; for POS, seqeval reads
  each UPOS tag as a chunk type, so a run of identical tags is one chunk (this is why POS F1 differs from token
  accuracy, and it is what XTREME reports).
- POS also gets token accuracy (`token_accuracy`: the share of words tagged right), what UD users expect; seqeval
  F1 merges runs of one tag and types chunks by the tag minus its first letter (SCONJ and CCONJ are one type).
  The paper's tables (and XTREME's) report the F1.
- TyDiQA: the SQuAD v1.1 evaluation (lower-case, strip ASCII punctuation and English articles, collapse
  whitespace; best F1 and exact match over the gold answers). It is written out here because `evaluate`'s
  squad metric is itself a script fetched from the hub. Like the official v1.1 script, only ASCII punctuation
  is removed, so «quotes» and 。 count as tokens.
- XNLI: accuracy.
"""

from __future__ import annotations

import re
import string
import warnings
from collections import Counter


def tagging_f1(gold: list[list[str]], pred: list[list[str]]) -> float:
    """seqeval F1 (x100) of predicted tag sequences against gold ones."""
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted tag sequences must have the same number of sentences and tokens")
    from seqeval.metrics import (
        f1_score,  # imports scikit-learn: only when tagging is scored
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns that POS tags "seem not to be NE tags"
        return 100.0 * f1_score(gold, pred)


TOKEN_ACCURACY = "token_accuracy"  # POS's second metric row beside seqeval's F1


def token_accuracy(gold: list[list[str]], pred: list[list[str]]) -> float:
    """The share (x100) of words whose predicted tag is the gold one, over all sentences."""
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted tag sequences must have the same number of sentences and tokens")
    return accuracy([tag for tags in gold for tag in tags], [tag for tags in pred for tag in tags])


_PUNCTUATION = set(string.punctuation)


def _normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _f1(prediction: str, gold: str) -> float:
    predicted, expected = _normalize_answer(prediction).split(), _normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_f1_em(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """SQuAD v1.1 F1 and exact match (x100), each the best over an example's gold answers, averaged."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")
    f1 = exact = 0.0
    for prediction, golds in zip(predictions, references):
        one_f1, one_exact = answer_f1_em(prediction, golds)
        f1, exact = f1 + one_f1, exact + one_exact
    return {"f1": 100.0 * f1 / len(predictions), "exact_match": 100.0 * exact / len(predictions)}


def answer_f1_em(prediction: str, golds: list[str]) -> tuple[float, float]:
    """One answer's SQuAD F1 and exact match (0-1), each the best over the gold answers."""
    return (max(_f1(prediction, gold) for gold in golds),
            max(float(_normalize_answer(prediction) == _normalize_answer(gold)) for gold in golds))


def accuracy(gold: list, pred: list) -> float:
    if len(gold) != len(pred) or not gold:
        raise ValueError(f"accuracy needs equally long, non-empty label lists (got {len(gold)} and {len(pred)})")
    return 100.0 * sum(g == p for g, p in zip(gold, pred)) / len(gold)
