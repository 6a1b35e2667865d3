"""The four tasks: label sets, metrics, model heads and the paper's hyper-parameters (docs/protocol.md)."""

from __future__ import annotations

from dataclasses import dataclass

from fslib.core.languages import TASK_LANGUAGES

NER_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
UPOS_LABELS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
               "SCONJ", "SYM", "VERB", "X")
XNLI_LABELS = ("contradiction", "entailment", "neutral")


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "tagging" | "qa" | "classification": which features, head and metric
    labels: tuple[str, ...]  # empty for span extraction
    metric: str  # the headline metric's name in result rows
    languages: tuple[str, ...]
    learning_rate: float
    epochs: int
    max_length: int
    alpha: float  # probability of stochastic gradient surgery
    doc_stride: int = 128  # TyDiQA only: overlap of the windows over long contexts


TASKS: dict[str, Task] = {
    "ner": Task("ner", "tagging", NER_LABELS, "f1", TASK_LANGUAGES["ner"], 2e-5, 10, 128, 1.0),
    "pos": Task("pos", "tagging", UPOS_LABELS, "f1", TASK_LANGUAGES["pos"], 2e-5, 10, 128, 1.0),
    # The paper's text: 2e-5 and 60 epochs for every stage; the authors' script: 3e-5 and 30 (params/authors).
    "tydiqa": Task("tydiqa", "qa", (), "f1", TASK_LANGUAGES["tydiqa"], 2e-5, 60, 384, 0.1),
    "xnli": Task("xnli", "classification", XNLI_LABELS, "accuracy", TASK_LANGUAGES["xnli"],
                 2e-5, 10, 128, 0.1),
}
SPLITS = ("train", "dev", "test")


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}") from None
