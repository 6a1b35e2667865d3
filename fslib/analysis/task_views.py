"""What each task notebook shows beyond the scores: where the model goes wrong, in the task's own terms.

Every view reads the final test predictions a run keeps (`fslib.store.run_files.read_predictions`: one dict per test
example with `lang`, `gold` and `pred`, and for tagging the `tokens`, for TyDiQA the `question`):

- NER: `entity_f1` (F1 per entity type and language) and `marked_sentences` (tagged sentences, errors marked);
- POS: `tag_scores` (precision, recall and F1 per UPOS tag), `pos_scores` (token accuracy beside seqeval F1, per
  language) and `tag_confusion` (which tag is taken for which);
- TyDiQA: `answers` (predicted beside gold answers) and `answer_scores` (F1/EM per question word and per length
  of the gold answer);
- XNLI: `confusion_by_language` (gold against predicted label, per language).
"""

from __future__ import annotations

import warnings
from collections import Counter

import pandas as pd

from fslib.engine.metrics import TOKEN_ACCURACY, answer_f1_em, tagging_f1, token_accuracy


def _by_lang(predictions: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in predictions:
        groups.setdefault(record["lang"], []).append(record)
    return groups


# ---- NER ------------------------------------------------------------------------------------------------------
def entity_f1(predictions: list[dict]) -> pd.DataFrame:
    """seqeval F1 (0-100) per entity type (columns, and `all`: the task metric) for each language (rows); empty
    where a type occurs neither in the gold nor in the predicted tags of a language."""
    from seqeval.metrics import classification_report

    rows = {}
    for lang, records in _by_lang(predictions).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined precision of a type never predicted: 0, as seqeval says
            report = classification_report([r["gold"] for r in records], [r["pred"] for r in records],
                                            output_dict=True, zero_division=0)
        rows[lang] = {name: 100.0 * values["f1-score"] for name, values in report.items()
                      if not name.endswith(" avg")}
        rows[lang]["all"] = 100.0 * report["micro avg"]["f1-score"]
    table = pd.DataFrame.from_dict(rows, orient="index")
    types = sorted(column for column in table.columns if column != "all")
    return table[types + ["all"]].round(2)


def mark_errors(tokens: list[str], gold: list[str], pred: list[str]) -> str:
    """One sentence as text: tokens with their gold tag where it is not O, and every wrong token as
    [token: gold → predicted]."""
    words = []
    for token, expected, predicted in zip(tokens, gold, pred):
        if expected != predicted:
            words.append(f"[{token}: {expected} → {predicted}]")
        else:
            words.append(token if expected == "O" else f"{token}/{expected}")
    return " ".join(words)


def marked_sentences(predictions: list[dict], n: int = 3, langs: list[str] | None = None) -> pd.DataFrame:
    """Up to `n` sentences per language, those with errors first (in their order in the test set), marked by
    `mark_errors`, with their number of wrong tokens."""
    rows = []
    for lang, records in _by_lang(predictions).items():
        if langs is not None and lang not in langs:
            continue
        errors = [sum(g != p for g, p in zip(r["gold"], r["pred"])) for r in records]
        chosen = sorted(range(len(records)), key=lambda i: (errors[i] == 0, i))[:n]
        rows += [{"lang": lang, "errors": errors[i], "sentence": mark_errors(records[i]["tokens"], records[i]["gold"],
                                                                           records[i]["pred"])} for i in chosen]
    return pd.DataFrame(rows, columns=["lang", "errors", "sentence"])


# ---- POS ------------------------------------------------------------------------------------------------------
def _tokens(predictions: list[dict]) -> list[tuple[str, str]]:
    return [(g, p) for record in predictions for g, p in zip(record["gold"], record["pred"])]


def tag_scores(predictions: list[dict]) -> pd.DataFrame:
    """Token-level precision, recall and F1 (0-100) and the gold count of every tag, over all languages."""
    pairs = _tokens(predictions)
    gold, predicted = Counter(g for g, _ in pairs), Counter(p for _, p in pairs)
    right = Counter(g for g, p in pairs if g == p)
    rows = {}
    for tag in sorted(set(gold) | set(predicted)):
        precision = right[tag] / predicted[tag] if predicted[tag] else 0.0
        recall = right[tag] / gold[tag] if gold[tag] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows[tag] = {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1, "support": gold[tag]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["support"] = table["support"].astype(int)
    return table.sort_values("support", ascending=False).round(2)


def pos_scores(predictions: list[dict]) -> pd.DataFrame:
    """Per language (and over all), token accuracy beside seqeval F1 (0-100), and the number of words: the two
    metric rows a POS run records (the paper's tables use the F1)."""
    rows = {}
    for lang in sorted({record["lang"] for record in predictions}) + ["all"]:
        chosen = [record for record in predictions if lang in ("all", record["lang"])]
        gold, pred = [record["gold"] for record in chosen], [record["pred"] for record in chosen]
        rows[lang] = {TOKEN_ACCURACY: token_accuracy(gold, pred), "f1": tagging_f1(gold, pred),
                      "words": sum(map(len, gold))}
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


def tag_confusion(predictions: list[dict], normalize: bool = False) -> pd.DataFrame:
    """Gold tags (rows) against predicted tags (columns): token counts, or with `normalize` the share (0-100) of
    each gold tag's tokens."""
    pairs = _tokens(predictions)
    tags = sorted({tag for pair in pairs for tag in pair})
    table = pd.crosstab(pd.Series([g for g, _ in pairs], name="gold"), pd.Series([p for _, p in pairs],
                        name="predicted")).reindex(index=tags, columns=tags, fill_value=0)
    if normalize:
        table = (100 * table.div(table.sum(axis=1).where(lambda s: s > 0), axis=0)).fillna(0.0).round(1)
    return table


def top_confusions(predictions: list[dict], n: int = 10) -> pd.DataFrame:
    """The `n` most frequent (gold, predicted) mistakes, with their count and share of the gold tag's tokens."""
    pairs = _tokens(predictions)
    gold = Counter(g for g, _ in pairs)
    mistakes = Counter((g, p) for g, p in pairs if g != p).most_common(n)
    return pd.DataFrame([{"gold": g, "predicted": p, "tokens": count, "share of gold": round(100 * count / gold[g], 1)}
                         for (g, p), count in mistakes], columns=["gold", "predicted", "tokens", "share of gold"])


# ---- TyDiQA ---------------------------------------------------------------------------------------------------
def answers(predictions: list[dict], n: int = 5, langs: list[str] | None = None) -> pd.DataFrame:
    """Up to `n` questions per language with the predicted and the gold answer and their F1/EM (0-100); wrong
    answers first."""
    rows = []
    for lang, records in _by_lang(predictions).items():
        if langs is not None and lang not in langs:
            continue
        scored = [(record, *answer_f1_em(record["pred"], record["gold"])) for record in records]
        scored.sort(key=lambda item: item[2])  # stable: exact matches last, the test set's order otherwise
        rows += [{"lang": lang, "question": record["question"], "predicted": record["pred"],
                  "gold": " | ".join(record["gold"]), "f1": round(100 * f1, 1), "em": round(100 * em, 1)}
                 for record, f1, em in scored[:n]]
    return pd.DataFrame(rows, columns=["lang", "question", "predicted", "gold", "f1", "em"])


ANSWER_LENGTHS = ((1, 1, "1 word"), (2, 2, "2 words"), (3, 4, "3-4 words"), (5, 10**9, "5+ words"))


def _answer_length(golds: list[str]) -> str:
    words = len(golds[0].split())
    return next(name for low, high, name in ANSWER_LENGTHS if low <= words <= high)


def answer_scores(predictions: list[dict], by: str = "question word", top: int = 8) -> pd.DataFrame:
    """Mean F1 and EM (0-100) and the number of questions per question word (the question's first word,
    lower-cased; beyond the `top` most frequent: "other") or per length of the first gold answer (`by="answer
    length"`)."""
    if by not in ("question word", "answer length"):
        raise ValueError(f"by must be 'question word' or 'answer length', not {by!r}")
    words = Counter(_question_word(record["question"]) for record in predictions)
    frequent = {word for word, _ in words.most_common(top)}
    rows = []
    for record in predictions:
        f1, em = answer_f1_em(record["pred"], record["gold"])
        if by == "question word":
            word = _question_word(record["question"])
            group = word if word in frequent else "other"
        else:
            group = _answer_length(record["gold"])
        rows.append({by: group, "f1": 100 * f1, "em": 100 * em})
    frame = pd.DataFrame(rows, columns=[by, "f1", "em"])
    table = frame.groupby(by).agg(questions=("f1", "size"), f1=("f1", "mean"), em=("em", "mean"))
    if by == "answer length":
        table = table.reindex([name for _, _, name in ANSWER_LENGTHS if name in table.index])
    else:
        table = table.sort_values("questions", ascending=False)
    return table.round(2)


def _question_word(question: str) -> str:
    words = question.split()
    return words[0].lower().strip("¿?¡!.,") if words else ""


# ---- XNLI -----------------------------------------------------------------------------------------------------
def confusion_by_language(predictions: list[dict], labels: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Per language (outer rows) the gold labels (inner rows) against the predicted ones (columns), as counts, and
    each language's accuracy (0-100) beside."""
    labels = labels or tuple(sorted({r["gold"] for r in predictions} | {r["pred"] for r in predictions}))
    blocks = []
    for lang, records in _by_lang(predictions).items():
        counts = Counter((r["gold"], r["pred"]) for r in records)
        block = pd.DataFrame([[counts[(gold, pred)] for pred in labels] for gold in labels], columns=list(labels),
                             index=pd.MultiIndex.from_product([[lang], labels], names=["lang", "gold"]))
        block["accuracy"] = round(100 * sum(r["gold"] == r["pred"] for r in records) / len(records), 2)
        blocks.append(block)
    if not blocks:
        return pd.DataFrame(columns=[*(labels or ()), "accuracy"])
    table = pd.concat(blocks)
    table.columns.name = "predicted"
    return table
