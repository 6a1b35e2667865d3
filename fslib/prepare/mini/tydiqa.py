"""TyDiQA-GoldP documents: short biographies and company profiles, with questions answered by exact spans.

A context is a few fact sentences about a main entity (a person or an organisation) plus distractor facts about
others (the same kinds of facts with other values, so that the question's entity has to be matched). Answer
tokens carry marks through word reordering and transliteration, so the answer's character span is found in
whatever language the context is rendered in. Alternative gold answers (dev files): a full name and the surname
alone, or a year and "in" + year.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from fslib.prepare.mini import lexicon as lx
from fslib.prepare.mini.grammar import Grammar, entity
from fslib.prepare.mini.syntax import Clause, Tok, detokenize, linearise, render, sym, word

VERSION = "TyDiQA-GoldP-1.1-for-SQuAD-1.1"
SHORT_WORDS = (30, 80)  # most contexts, in whitespace tokens
LONG_WORDS = (250, 400)  # a few per split, longer than one 384-token window
LONG_PER_SPLIT = 5
TWO_ANSWER_SHARE = 0.2  # dev files only
_GLUED = {".", ",", "?", '"'}
_JOBS = ("teacher", "doctor", "farmer", "driver", "engineer", "writer", "singer", "lawyer", "nurse", "artist")


@dataclass
class Question:
    clause: Clause
    main: str  # the mark of the answer's tokens
    alt: str = ""  # the mark of an alternative gold answer, if any


@dataclass
class Fact:
    sentence: Clause
    questions: list[Question]


def _marked(toks: list[Tok], *marks: str) -> list[Tok]:
    return [Tok(t.text, t.upos, t.ner, t.kind, t.marks + marks) for t in toks]


def _q(*parts: tuple[str, list[Tok]]) -> Clause:
    c = Clause()
    for role, toks in parts:
        c.add(role, *toks)
    return c.add("P", sym("?"))


def _w(*spec: str) -> list[Tok]:
    """Words from "text/UPOS" specs."""
    return [word(*item.split("/")) for item in spec]


class Facts:
    """Fact sentences and their questions; `k` numbers facts so that answer marks are unique in a context."""

    def __init__(self, rng: random.Random, grammar: Grammar) -> None:
        self.rng = rng
        self.g = grammar
        self.k = 0

    def _marks(self) -> tuple[str, str]:
        self.k += 1
        return f"{self.k}a", f"{self.k}b"

    def _person_answer(self, first: str, last: str, main: str, alt: str) -> list[Tok]:
        # The full name is the answer; its last token alone is the alternative answer.
        toks = _marked(entity(f"{first} {last}", "PER"), main)
        return toks[:-1] + _marked(toks[-1:], alt)

    def _year(self, main: str, alt: str) -> list[Tok]:
        return _marked([word("in", "ADP")], alt) + _marked([sym(str(self.rng.randint(1900, 2015)), "NUM")], main, alt)

    def _which(self, noun: str) -> list[Tok]:
        return _w("which/DET", f"{noun}/NOUN")

    def person_fact(self, name: list[Tok], kind: str) -> Fact:
        rng, g = self.rng, self.g
        a, b = self._marks()
        q = lambda *parts: Question(_q(*parts), a, b)  # noqa: E731
        if kind == "born":
            c = Clause().add("S", *name).add("V", *_w("was/AUX", "born/VERB"))
            c.add("A", word("in", "ADP"), *_marked(g.loc(), a))
            a2, b2 = self._marks()
            c.add("A", *self._year(a2, b2))
            where = rng.choice((_w("where/ADV"), [word("in", "ADP"), *self._which("city")]))
            when = rng.choice((_w("when/ADV"), [word("in", "ADP"), *self._which("year")]))
            questions = [Question(_q(("Q", where), ("V", _w("was/AUX")), ("S", name), ("V", _w("born/VERB"))), a),
                         Question(_q(("Q", when), ("V", _w("was/AUX")), ("S", name), ("V", _w("born/VERB"))), a2, b2)]
        elif kind == "works":
            job = rng.choice(_JOBS)
            c = Clause().add("S", *name).add("V", *_w("works/VERB")).add("A", word("for", "ADP"), *_marked(g.org(), a))
            c.add("A", *_w("as/ADP", f"{'an' if job[0] in 'aeiou' else 'a'}/DET", f"{job}/NOUN"))
            questions = [Question(_q(("Q", [word("for", "ADP"), *self._which("company")]), ("V", _w("does/AUX")),
                                     ("S", name), ("V", _w("work/VERB"))), a)]
        elif kind == "lives":
            c = Clause().add("S", *name).add("V", *_w("lives/VERB")).add("A", word("in", "ADP"), *_marked(g.loc(), a))
            where = rng.choice((_w("where/ADV"), [word("in", "ADP"), *self._which("city")]))
            questions = [Question(_q(("Q", where), ("V", _w("does/AUX")), ("S", name), ("V", _w("live/VERB"))), a)]
        elif kind == "children":
            c = Clause().add("S", *name).add("V", *_w("has/VERB"))
            c.add("O", *_marked([g.number(2, 9)], a), word("children", "NOUN"))
            questions = [Question(_q(("Q", _w("how/ADV", "many/ADJ", "children/NOUN")), ("V", _w("does/AUX")),
                                     ("S", name), ("V", _w("have/VERB"))), a)]
        elif kind == "married":
            c = Clause().add("S", *name).add("V", *_w("married/VERB"))
            c.add("O", *self._person_answer(*g.person_name(), a, b))
            a2, b2 = self._marks()
            c.add("A", *self._year(a2, b2))
            who = rng.choice((_w("who/PRON"), _w("whom/PRON")))
            questions = [q(("Q", who), ("V", _w("did/AUX")), ("S", name), ("V", _w("marry/VERB")))]
        else:  # wrote: a quoted title
            title = [Tok(part, "PROPN", kind="name", marks=(a,)) for part in rng.choice(lx.TITLES_OF_WORKS).split()]
            c = Clause().add("S", *name).add("V", *_w("wrote/VERB"))
            c.add("O", *_w("the/DET", "book/NOUN"), sym('"'), *title, sym('"'))
            a2, b2 = self._marks()
            c.add("A", *self._year(a2, b2))
            questions = [Question(_q(("Q", _w("what/PRON")), ("V", _w("did/AUX")), ("S", name),
                                     ("V", _w("write/VERB"))), a)]
        return Fact(Clause().add("M", c).add("P", sym(".")), questions)

    def org_fact(self, name: list[Tok], kind: str) -> Fact:
        rng, g = self.rng, self.g
        a, b = self._marks()
        if kind == "founded":
            c = Clause().add("S", *name).add("V", *_w("was/AUX", "founded/VERB"))
            c.add("A", word("by", "ADP"), *self._person_answer(*g.person_name(), a, b))
            a2, b2 = self._marks()
            c.add("A", *self._year(a2, b2))
            who = rng.choice((("Q", _w("who/PRON")), ("Q", _w("by/ADP", "whom/PRON"))))
            if who[1][0].text == "who":
                founder = _q(who, ("V", _w("founded/VERB")), ("O", name))
            else:
                founder = _q(who, ("V", _w("was/AUX")), ("S", name), ("V", _w("founded/VERB")))
            when = rng.choice((_w("when/ADV"), [word("in", "ADP"), *self._which("year")]))
            founded_when = _q(("Q", when), ("V", _w("was/AUX")), ("S", name), ("V", _w("founded/VERB")))
            questions = [Question(founder, a, b), Question(founded_when, a2, b2)]
        elif kind == "based":
            c = Clause().add("S", *name).add("V", *_w("is/AUX", "based/VERB"))
            c.add("A", word("in", "ADP"), *_marked(g.loc(), a))
            questions = [Question(_q(("Q", _w("where/ADV")), ("V", _w("is/AUX")), ("S", name),
                                     ("V", _w("based/VERB"))), a)]
        elif kind == "sells":
            thing = rng.choice(lx.THING_NOUNS)[1]
            goods = ([word(rng.choice(lx.ADJECTIVES), "ADJ")] if rng.random() < 0.5 else []) + [word(thing, "NOUN")]
            c = Clause().add("S", *name).add("V", *_w("sells/VERB")).add("O", *_marked(goods, a))
            questions = [Question(_q(("Q", _w("what/PRON")), ("V", _w("does/AUX")), ("S", name),
                                     ("V", _w("sell/VERB"))), a)]
        elif kind == "employees":
            count = sym(str(rng.randint(12, 9000)), "NUM")
            c = Clause().add("S", *name).add("V", *_w("has/VERB")).add("O", *_marked([count], a),
                                                                          word("employees", "NOUN"))
            questions = [Question(_q(("Q", _w("how/ADV", "many/ADJ", "employees/NOUN")), ("V", _w("does/AUX")),
                                     ("S", name), ("V", _w("have/VERB"))), a)]
        else:  # runs
            c = Clause().add("S", *self._person_answer(*g.person_name(), a, b)).add("V", *_w("runs/VERB"))
            c.add("O", *name)
            questions = [Question(_q(("Q", _w("who/PRON")), ("V", _w("runs/VERB")), ("O", name)), a, b)]
        return Fact(Clause().add("M", c).add("P", sym(".")), questions)

    def entity_facts(self, low: int = 2, high: int = 4) -> tuple[list[Tok], list[Fact]]:
        """A new person or organisation with `low`..`high` facts about it."""
        n = self.rng.randint(low, high)
        if self.rng.random() < 0.5:
            name = entity(" ".join(self.g.person_name()), "PER")
            kinds = self.rng.sample(("born", "works", "lives", "children", "married", "wrote"), n)
            return name, [self.person_fact(name, kind) for kind in kinds]
        name = self.g.org()
        kinds = self.rng.sample(("founded", "based", "sells", "employees", "runs"), n)
        return name, [self.org_fact(name, kind) for kind in kinds]


def _words(fact: Fact) -> int:
    # Whitespace tokens of the fact's sentence, the same in every language (one word per English token):
    # punctuation and quotes attach to a neighbour.
    return sum(1 for t in linearise(fact.sentence, False) if t.kind != "sym" or t.text not in _GLUED)


def _document(rng: random.Random, facts_maker: Facts, long: bool, two_answers: bool):
    """A main entity's facts plus single distractor facts about other entities, shuffled, and one question."""
    low, high = LONG_WORDS if long else SHORT_WORDS
    while True:
        facts_maker.k = 0
        name, main = facts_maker.entity_facts()
        candidates = [q for f in main for q in f.questions if q.alt or not two_answers]
        if not candidates:
            continue
        facts = list(main)
        words = sum(map(_words, facts))
        target = rng.randint(low + 10, high - 40) if long else rng.randint(low, high - 20)
        while words < target:
            facts.extend(facts_maker.entity_facts(1, 1)[1])
            words += _words(facts[-1])
        if words <= high:
            rng.shuffle(facts)
            return name, facts, rng.choice(candidates)


def _render_context(facts: list[Fact], lang: str) -> tuple[str, dict[str, tuple[int, int]]]:
    """The context text and the character span of every mark."""
    pieces, spans = [], {}
    pos = 0
    for fact in facts:
        toks, forms = render(fact.sentence, lang)
        text, tok_spans = detokenize(forms, pos)
        marked: dict[str, list[int]] = {}
        for i, tok in enumerate(toks):
            for mark in tok.marks:
                marked.setdefault(mark, []).append(i)
        for mark, idx in marked.items():
            assert idx == list(range(idx[0], idx[-1] + 1)), f"answer {mark} is not contiguous"
            spans[mark] = (tok_spans[idx[0]][0], tok_spans[idx[-1]][1])
        pieces.append(text)
        pos += len(text) + 1
    return " ".join(pieces), spans


def tydiqa_documents(lang: str, n: int, rng: random.Random, unseen_names: bool, dev: bool) -> list[dict]:
    """`n` SQuAD documents (one question each) in `lang`; dev documents have a title, language-prefixed ids and
    sometimes two gold answers."""
    facts_maker = Facts(rng, Grammar(rng, unseen_names))
    long_at = set(rng.sample(range(n), min(n, LONG_PER_SPLIT)))
    first_id = rng.randrange(10 ** 18, 9 * 10 ** 18)
    docs = []
    for i in range(n):
        two = dev and rng.random() < TWO_ANSWER_SHARE
        name, facts, question = _document(rng, facts_maker, i in long_at, two)
        context, spans = _render_context(facts, lang)
        answers = []
        for mark in (question.main, question.alt) if two else (question.main,):
            start, end = spans[mark]
            answers.append({"answer_start": start, "text": context[start:end]})
            assert context[start:start + len(answers[-1]["text"])] == answers[-1]["text"]
        q_text = detokenize(render(question.clause, lang)[1])[0]
        qa = {"answers": answers, "question": q_text, "id": f"{lang}-{first_id + i}-0" if dev else str(first_id + i)}
        doc = {"paragraphs": [{"context": context, "qas": [qa]}]}
        if dev:
            doc = {"title": detokenize(render(Clause().add("S", *name), lang)[1])[0], **doc}
        docs.append(doc)
    return docs


def write_tydiqa(path: Path, docs: list[dict]) -> None:
    # As tydiqa_preprocess writes the train files (json.dump defaults: ASCII escapes, no indentation).
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump({"data": docs, "version": VERSION}, f)
