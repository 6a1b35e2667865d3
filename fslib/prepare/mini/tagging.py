"""NER (PAN-X layout) and POS (UD layout) sentences: token<TAB>label lines, one blank line between sentences."""

from __future__ import annotations

import random
from pathlib import Path

from fslib.prepare.mini.grammar import Grammar
from fslib.prepare.mini.syntax import render

MIN_LEN, MAX_LEN = 5, 30  # ordinary sentences
LONG_MIN, LONG_MAX = 60, 90  # a few per split, so that splitting long sentences gets exercised
P_ENTITY = {"ner": 0.6, "pos": 0.25}  # how often a noun phrase slot is a name
NO_ENTITY_SHARE = 0.12  # NER sentences generated without any name slot
INTJ_SHARE = {"ner": 0.02, "pos": 0.08}


def tagged_sentences(task: str, lang: str, n: int, rng: random.Random,
                     unseen_names: bool) -> list[list[tuple[str, str]]]:
    """`n` sentences of `task` ("ner" or "pos") in `lang`, as (token, label) pairs."""
    grammar = Grammar(rng, unseen_names)
    n_long = min(n, max(2, n // 100))
    sentences = []
    while len(sentences) < n - n_long:
        p_ent = 0.0 if task == "ner" and rng.random() < NO_ENTITY_SHARE else P_ENTITY[task]
        clause = grammar.sentence(p_ent, INTJ_SHARE[task])
        toks, forms = render(clause, lang)
        if MIN_LEN <= len(toks) <= MAX_LEN:
            sentences.append(_labelled(task, toks, forms))
    for _ in range(n_long):
        toks, forms = render(grammar.long_sentence(P_ENTITY[task], LONG_MIN, LONG_MAX), lang)
        sentences.insert(rng.randrange(len(sentences) + 1), _labelled(task, toks, forms))
    return sentences


def _labelled(task: str, toks, forms) -> list[tuple[str, str]]:
    return [(form, tok.ner if task == "ner" else tok.upos) for tok, form in zip(toks, forms)]


def write_tagging(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    """As XTREME's preprocessing writes them: the file ends with the last token line, no blank line after."""
    text = "\n".join("".join(f"{token}\t{label}\n" for token, label in sentence) for sentence in sentences)
    path.write_text(text, encoding="utf-8", newline="\n")
