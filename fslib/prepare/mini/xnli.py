"""XNLI pairs whose label follows from the text.

A premise is one clause built from parts (subject, verb, object, adjuncts), so that a hypothesis can be derived
from it by editing the parts:
- entailment: drop modifiers (adjectives, adjuncts): the hypothesis is a generalisation of the premise;
- contradiction: negate the verb, or change an attribute, a year, a place or a number (other modifiers may be
  dropped as well);
- neutral: add an adjunct or an adjective that the premise does not have (others may be dropped as well).
Premises are never negated, so that dropping a modifier always yields an entailment.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from fslib.core.tasks import XNLI_LABELS
from fslib.prepare.mini import lexicon as lx
from fslib.prepare.mini.grammar import Grammar, article, entity
from fslib.prepare.mini.syntax import Clause, Tok, detokenize, linearise, render, sym, word

QUOTE_SHARE = 0.04  # premises with a quoted title of a work, so that csv quoting gets exercised
_ADVERB_CLASSES = (("quickly", "slowly"), ("together", "alone"))
_MANNER = ("quickly", "slowly", "together", "again")


@dataclass(frozen=True)
class NP:
    name: tuple[Tok, ...] = ()  # a named entity or quoted title; the fields below are then unused
    noun: tuple[str, str] = ("", "")  # (singular, plural)
    plural: bool = False
    count: str = ""  # a number instead of a determiner (plural only)
    definite: bool = True
    adj: str = ""

    def toks(self) -> list[Tok]:
        if self.name:
            return list(self.name)
        noun = word(self.noun[1] if self.plural else self.noun[0], "NOUN")
        mods = [word(self.adj, "ADJ")] if self.adj else []
        if self.count:
            det = [sym(self.count, "NUM") if self.count.isdigit() else word(self.count, "NUM")]
        elif self.definite:
            det = [word("the", "DET")]
        else:
            det = [word("some", "DET")] if self.plural else [word(article((mods or [noun])[0].text), "DET")]
        return det + mods + [noun]


@dataclass(frozen=True)
class Prop:
    subj: NP
    verb: tuple[str, str, str]
    tense: str  # present | past | future
    obj: NP
    negated: bool = False
    adjuncts: dict = field(default_factory=dict)  # kind ("loc" | "time" | "with" | "manner") -> (key, tokens)

    def clause(self) -> Clause:
        base, third, past = self.verb
        plural = self.subj.plural
        if self.tense == "future":
            verb = [word("will", "AUX")] + ([word("not", "PART")] if self.negated else []) + [word(base, "VERB")]
        elif self.negated:
            verb = [word(lx.DO_SUPPORT[(self.tense, plural)], "AUX"), word("not", "PART"), word(base, "VERB")]
        else:
            verb = [word(past if self.tense == "past" else base if plural else third, "VERB")]
        c = Clause().add("S", *self.subj.toks()).add("V", *verb).add("O", *self.obj.toks())
        for kind in ("with", "loc", "manner", "time"):  # a fixed order, so hypotheses align with premises
            if kind in self.adjuncts:
                c.add("A", *self.adjuncts[kind][1])
        return Clause().add("M", c).add("P", sym("."))


class PairMaker:
    def __init__(self, rng: random.Random, unseen_names: bool) -> None:
        self.rng = rng
        self.grammar = Grammar(rng, unseen_names)

    # --- parts ----------------------------------------------------------------------------------------------------

    def adjective(self, nouns, exclude: str = "") -> str:
        pool = lx.PERSON_ADJECTIVES if nouns is lx.PERSON_NOUNS else lx.ADJECTIVES
        return self.rng.choice([a for a in pool if a != exclude])

    def subject(self) -> NP:
        r = self.rng.random()
        if r < 0.45:
            return NP(name=tuple(self.grammar.person()))
        if r < 0.6:
            return NP(name=tuple(self.grammar.org()))
        plural = self.rng.random() < 0.3
        return NP(noun=self.rng.choice(lx.PERSON_NOUNS), plural=plural, definite=self.rng.random() < 0.7,
                  adj=self.adjective(lx.PERSON_NOUNS) if self.rng.random() < 0.5 else "")

    def obj(self) -> tuple[NP, tuple[str, str, str]]:
        rng = self.rng
        r = rng.random()
        if r < QUOTE_SHARE:  # "wrote "Blue River""
            title = [Tok(part, "PROPN", kind="name") for part in rng.choice(lx.TITLES_OF_WORKS).split()]
            return NP(name=(sym('"'), *title, sym('"'))), rng.choice(lx.TITLE_VERBS)
        if r < 0.2:
            label = rng.choice(("PER", "ORG"))
            return NP(name=tuple(self.grammar.named(label))), rng.choice(lx.TRANSITIVE_VERBS[:18])
        plural = rng.random() < 0.4
        count = ""
        if plural and rng.random() < 0.4:
            count = rng.choice(lx.NUMBER_WORDS) if rng.random() < 0.5 else str(rng.randint(2, 40))
        np = NP(noun=rng.choice(lx.THING_NOUNS), plural=plural, count=count, definite=rng.random() < 0.5,
                adj=self.adjective(lx.THING_NOUNS) if rng.random() < 0.6 else "")
        return np, rng.choice(lx.TRANSITIVE_VERBS)

    def adjunct(self, kind: str, tense: str, exclude: str = "") -> tuple[str, list[Tok]]:
        """An adjunct of `kind` as (key, tokens); the key (a place, a year, an adverb) shares no word with
        `exclude`."""
        rng, g = self.rng, self.grammar
        while True:
            if kind == "loc":
                name = g.loc_name()
                key, toks = name, [word("in", "ADP"), *entity(name, "LOC")]
            elif kind == "with":
                toks = [word("with", "ADP"), *g.person()]
                key = " ".join(t.text for t in toks)
            elif kind == "manner":
                key = rng.choice(_MANNER)
                toks = [word(key, "ADV")]
            elif tense == "past":
                key = str(rng.randint(1950, 2020))
                toks = [word("in", "ADP"), sym(key, "NUM")]
            else:
                key = "tomorrow" if tense == "future" else "today"
                toks = [word(key, "ADV")]
            if not set(key.split()) & set(exclude.split()):  # "Upper Drovna" is no change from "Drovna"
                return key, toks
            if kind == "time" and tense != "past":
                raise ValueError("no other time adjunct")

    def premise(self) -> Prop:
        rng = self.rng
        obj, verb = self.obj()
        tense = rng.choice(("past", "past", "present", "future"))
        adjuncts = {}
        for kind in ("loc", "time", "with", "manner"):
            if rng.random() < 0.4:
                adjuncts[kind] = self.adjunct(kind, tense)
        if len(adjuncts) == 4:  # leave a slot free, so that a neutral hypothesis can always add an adjunct
            del adjuncts[rng.choice(tuple(adjuncts))]
        prop = Prop(self.subject(), verb, tense, obj, adjuncts=adjuncts)
        if not self._droppable(prop):
            kind = rng.choice(("loc", "time", "with", "manner"))
            prop = replace(prop, adjuncts={kind: self.adjunct(kind, tense)})
        return prop

    # --- edits -----------------------------------------------------------------------------------------------------

    @staticmethod
    def _droppable(prop: Prop) -> list[str]:
        items = [f"adjunct:{kind}" for kind in prop.adjuncts]
        items += [role for role in ("subj", "obj") if getattr(prop, role).adj]
        return items

    @staticmethod
    def _drop(prop: Prop, items: list[str]) -> Prop:
        for item in items:
            if item.startswith("adjunct:"):
                kind = item.split(":")[1]
                prop = replace(prop, adjuncts={k: v for k, v in prop.adjuncts.items() if k != kind})
            else:
                prop = replace(prop, **{item: replace(getattr(prop, item), adj="")})
        return prop

    def _drop_some(self, prop: Prop, keep: str, p: float) -> Prop:
        """Drop a random subset of the modifiers other than `keep`, with probability `p`."""
        others = [item for item in self._droppable(prop) if item != keep]
        if others and self.rng.random() < p:
            prop = self._drop(prop, self.rng.sample(others, self.rng.randint(1, len(others))))
        return prop

    def entailment(self, prop: Prop) -> Prop:
        items = self._droppable(prop)
        return self._drop(prop, self.rng.sample(items, self.rng.randint(1, len(items))))

    def contradiction(self, prop: Prop) -> Prop:
        rng = self.rng
        options = ["negate"]
        options += [role for role in ("subj", "obj") if getattr(prop, role).adj]
        options += [kind for kind in ("loc", "manner") if kind in prop.adjuncts]
        if "time" in prop.adjuncts and prop.tense == "past":
            options.append("time")
        if prop.obj.count:
            options.append("count")
        choice = rng.choice(options)
        if choice == "negate":
            return replace(self._drop_some(prop, "", 0.5), negated=True)
        if choice in ("subj", "obj"):
            np = getattr(prop, choice)
            group = next(g for g in lx.ADJECTIVE_CLASSES if np.adj in g)
            nouns = lx.PERSON_NOUNS if np.noun in lx.PERSON_NOUNS else lx.THING_NOUNS
            other = rng.choice([a for a in group if a != np.adj]) if len(group) > 1 else self.adjective(nouns, np.adj)
            return self._drop_some(replace(prop, **{choice: replace(np, adj=other)}), choice, 0.5)
        if choice == "count":
            old = prop.obj.count
            new = rng.choice([str(n) for n in range(2, 41) if str(n) != old] if old.isdigit()
                             else [w for w in lx.NUMBER_WORDS if w != old])
            return self._drop_some(replace(prop, obj=replace(prop.obj, count=new)), "", 0.5)
        if choice == "manner":
            old = prop.adjuncts["manner"][0]
            group = next((g for g in _ADVERB_CLASSES if old in g), None)
            if group is None:  # "again" has no opposite: negate instead
                return replace(self._drop_some(prop, "", 0.5), negated=True)
            new = next(a for a in group if a != old)
            adjuncts = {**prop.adjuncts, "manner": (new, [word(new, "ADV")])}
            return self._drop_some(replace(prop, adjuncts=adjuncts), "adjunct:manner", 0.5)
        adjuncts = {**prop.adjuncts, choice: self.adjunct(choice, prop.tense, exclude=prop.adjuncts[choice][0])}
        return self._drop_some(replace(prop, adjuncts=adjuncts), f"adjunct:{choice}", 0.5)

    def neutral(self, prop: Prop) -> Prop:
        rng = self.rng
        options = [f"adjunct:{kind}" for kind in ("loc", "time", "with", "manner") if kind not in prop.adjuncts]
        options += [role for role in ("subj", "obj") if not getattr(prop, role).name and not getattr(prop, role).adj]
        choice = rng.choice(options)  # never empty: premises leave an adjunct slot free
        base = self._drop_some(prop, "", 0.4)
        if choice.startswith("adjunct:"):
            kind = choice.split(":")[1]
            return replace(base, adjuncts={**base.adjuncts, kind: self.adjunct(kind, prop.tense)})
        np = getattr(base, choice)
        nouns = lx.PERSON_NOUNS if np.noun in lx.PERSON_NOUNS else lx.THING_NOUNS
        return replace(base, **{choice: replace(np, adj=self.adjective(nouns))})

    def pair(self, label: str) -> tuple[Prop, Prop]:
        edit = {"entailment": self.entailment, "contradiction": self.contradiction, "neutral": self.neutral}[label]
        while True:
            prem = self.premise()
            hyp = edit(prem)
            # A contradiction or neutral hypothesis says something new: a word the premise does not have
            # (e.g. not an added adjective that the premise has on another noun).
            new = _words(hyp) - _words(prem)
            if (not new) if label == "entailment" else new:
                return prem, hyp


def _words(prop: Prop) -> set[str]:
    return {"a" if t.text == "an" else t.text for t in linearise(prop.clause(), False)}


def text(prop: Prop, lang: str) -> str:
    return detokenize(render(prop.clause(), lang)[1])[0]


def xnli_pairs(lang: str, n: int, rng: random.Random, unseen_names: bool) -> list[tuple[str, str, str]]:
    """`n` (premise, hypothesis, label) rows in `lang`, the classes as balanced as `n` allows."""
    maker = PairMaker(rng, unseen_names)
    labels = [XNLI_LABELS[i % 3] for i in range(n)]
    rng.shuffle(labels)
    rows = []
    for label in labels:
        prem, hyp = maker.pair(label)
        rows.append((text(prem, lang), text(hyp, lang), label))
    return rows


def write_xnli(path: Path, rows: list[tuple[str, str, str]]) -> None:
    # XTREME writes with csv.writer(delimiter='\t') (CRLF line ends, minimal quoting); newline="" keeps the
    # CRLF exact on every platform.
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        for row in rows:
            writer.writerow(row)
