"""A small random English grammar: clauses with entities, modifiers, tenses, negation and subordinate clauses.

Every token carries its UPOS tag and NER label, so the NER and POS files come from the same sentences. The
grammar mixes cues that make the tasks learnable: titles before people ("Mr Novak"), "works for" + ORG, "in" +
LOC, organisation names ending in "Holdings"/"Bank"/..., and NOUN/VERB homographs told apart by their left
context ("the plans" vs "she plans").
"""

from __future__ import annotations

import random
import zlib

from fslib.prepare.mini import lexicon as lx
from fslib.prepare.mini.syntax import Clause, Tok, linearise, sym, word


def _held_out(name: str) -> bool:
    # A fixed quarter of every gazetteer never occurs in a train split, so dev/test have unseen names.
    return zlib.crc32(name.encode()) % 4 == 0


def entity(name: str, label: str, marks: tuple[str, ...] = ()) -> list[Tok]:
    """The tokens of a (possibly multi-word) name with BIO labels of type `label`."""
    return [Tok(part, "PROPN", f"{'B' if i == 0 else 'I'}-{label}", "name", marks)
            for i, part in enumerate(name.split())]


def article(next_word: str) -> str:
    return "an" if next_word[0] in "aeiou" else "a"


_NAME_VERBS = {
    "LOC": tuple(v for v in lx.TRANSITIVE_VERBS if v[0] in ("visit", "see", "like", "love", "describe", "paint")),
    "PER": tuple(v for v in lx.TRANSITIVE_VERBS if v[0] in ("help", "call", "visit", "see", "like", "love", "need",
                                                             "watch", "describe", "find", "paint")),
    "ORG": tuple(v for v in lx.TRANSITIVE_VERBS if v[0] in ("buy", "sell", "help", "call", "like", "need", "visit",
                                                             "describe", "build", "report")),
}


class Grammar:
    """Random English sentences; `unseen_names` lets the held-out quarter of each gazetteer appear."""

    def __init__(self, rng: random.Random, unseen_names: bool) -> None:
        self.rng = rng
        keep = (lambda names: tuple(names)) if unseen_names else (
            lambda names: tuple(n for n in names if not _held_out(n)))
        self.first_names = keep(lx.FIRST_NAMES)
        self.last_names = keep(lx.LAST_NAMES)
        self.org_stems = keep(lx.ORG_STEMS)
        self.locations = keep(lx.LOCATIONS)

    # --- names ------------------------------------------------------------------------------------------------

    def person_name(self) -> tuple[str, str]:
        return self.rng.choice(self.first_names), self.rng.choice(self.last_names)

    def org_name(self) -> str:
        return f"{self.rng.choice(self.org_stems)} {self.rng.choice(lx.ORG_SUFFIXES)}"

    def loc_name(self) -> str:
        return self.rng.choice(self.locations)

    def person(self) -> list[Tok]:
        """A person mention: "Anna Novak", "Mr Novak", "Dr Anna Novak" or "Anna"."""
        first, last = self.person_name()
        r = self.rng.random()
        if r < 0.45:
            return entity(f"{first} {last}", "PER")
        if r < 0.75:
            title = self.rng.choice(lx.TITLES)
            name = last if self.rng.random() < 0.7 else f"{first} {last}"
            return [word(title, "PROPN"), *entity(name, "PER")]
        return entity(first if r < 0.9 else last, "PER")

    def org(self) -> list[Tok]:
        return entity(self.org_name(), "ORG")

    def loc(self) -> list[Tok]:
        return entity(self.loc_name(), "LOC")

    def named(self, label: str) -> list[Tok]:
        return {"PER": self.person, "ORG": self.org, "LOC": self.loc}[label]()

    def number(self, low: int = 2, high: int = 99) -> Tok:
        if self.rng.random() < 0.4:
            return word(self.rng.choice(lx.NUMBER_WORDS), "NUM")
        return sym(str(self.rng.randint(low, high)), "NUM")

    def year(self) -> Tok:
        return sym(str(self.rng.randint(1890, 2020)), "NUM")

    # --- noun phrases -------------------------------------------------------------------------------------------

    def common_np(self, nouns=None, plural: bool | None = None, adj_p: float = 0.4,
                  adjectives=lx.ADJECTIVES) -> tuple[list[Tok], bool]:
        """"the old car", "some tired students", "three books": tokens and whether it is plural."""
        rng = self.rng
        nouns = nouns or rng.choice((lx.PERSON_NOUNS, lx.THING_NOUNS, lx.THING_NOUNS, lx.GROUP_NOUNS, lx.AMBIGUOUS))
        forms = rng.choice(nouns)
        plural = rng.random() < 0.35 if plural is None else plural
        noun = word(forms[1] if plural else forms[0], "NOUN")
        mods: list[Tok] = []
        if rng.random() < adj_p:
            if rng.random() < 0.15:
                mods.append(word(rng.choice(lx.DEGREE_ADVERBS), "ADV"))
            mods.append(word(rng.choice(adjectives), "ADJ"))
        first = (mods or [noun])[0].text
        if plural:
            r = rng.random()
            det = ([] if r < 0.25 else [self.number(2, 30)] if r < 0.5
                   else [word(rng.choice(("the", "some", "these", "those")), "DET")])
        else:
            det = [word(rng.choice(("the", "the", article(first), "this", "that", "every")), "DET")]
        np = det + mods + [noun]
        if rng.random() < 0.08:  # "the teacher 's car": possessive part
            owner = self.person() if rng.random() < 0.5 else self.org()
            thing = rng.choice(lx.THING_NOUNS)
            np = [*owner, word("'s", "PART"), word(thing[1] if plural else thing[0], "NOUN")]
        return np, plural

    def subject(self, p_ent: float) -> tuple[list[Tok], bool]:
        rng = self.rng
        r = rng.random()
        if r < p_ent * 0.6:
            return self.person(), False
        if r < p_ent:
            org = self.org()
            if rng.random() < 0.2:  # "the company Acme Holdings"
                return [word("the", "DET"), word("company", "NOUN"), *org], False
            return org, False
        if r < p_ent + (1 - p_ent) * 0.3:
            pronoun = rng.choice(tuple(lx.SUBJECT_PRONOUNS))
            return [word(pronoun, "PRON")], lx.SUBJECT_PRONOUNS[pronoun]
        np, plural = self.common_np(rng.choice((lx.PERSON_NOUNS, lx.PERSON_NOUNS, lx.GROUP_NOUNS)),
                                    adjectives=lx.PERSON_ADJECTIVES)
        if rng.random() < 0.1 and not plural:  # apposition: "Anna Novak , a doctor from Oslo ,"
            noun = rng.choice(lx.PERSON_NOUNS)[0]
            np = [*self.person(), sym(","), word(article(noun), "DET"), word(noun, "NOUN"), word("from", "ADP"),
                  *self.loc(), sym(",")]
        return np, plural

    def object(self, p_ent: float) -> list[Tok]:
        rng = self.rng
        r = rng.random()
        if r < p_ent:
            return self.named(rng.choice(("PER", "ORG", "LOC", "LOC")))
        if r < p_ent + 0.1:
            return [word(rng.choice(lx.OBJECT_PRONOUNS), "PRON")]
        if r < p_ent + 0.14:  # "cars , ships etc"
            a, b = rng.sample(lx.THING_NOUNS, 2)
            return [word(a[1], "NOUN"), sym(","), word(b[1], "NOUN"), word(rng.choice(lx.X_WORDS), "X")]
        return self.common_np(rng.choice((lx.THING_NOUNS, lx.THING_NOUNS, lx.AMBIGUOUS, lx.PERSON_NOUNS)))[0]

    # --- verb groups ----------------------------------------------------------------------------------------------

    def verb_group(self, forms: tuple[str, str, str], plural: bool, neg_p: float = 0.15,
                   tense: str | None = None) -> list[Tok]:
        """"sells", "sold", "does not sell", "will sell", "can not sell"."""
        rng = self.rng
        base, third, past = forms
        tense = tense or rng.choice(("present", "present", "past", "past", "modal"))
        negated = rng.random() < neg_p
        if tense == "modal":
            aux = [word(rng.choice(lx.MODALS), "AUX")]
            return aux + ([word("not", "PART")] if negated else []) + [word(base, "VERB")]
        if negated:
            return [word(lx.DO_SUPPORT[(tense, plural)], "AUX"), word("not", "PART"), word(base, "VERB")]
        if tense == "past":
            return [word(past, "VERB")]
        return [word(base if plural else third, "VERB")]

    def copula(self, plural: bool, neg_p: float = 0.15) -> list[Tok]:
        tense = self.rng.choice(("present", "past"))
        aux = [word(lx.COPULA[(tense, plural)], "AUX")]
        return aux + ([word("not", "PART")] if self.rng.random() < neg_p else [])

    # --- adjuncts -----------------------------------------------------------------------------------------------------

    def adjunct(self, p_ent: float) -> list[Tok | Clause]:
        rng = self.rng
        r = rng.random()
        if r < p_ent * 0.5:
            return [word(rng.choice(("in", "near", "from", "to", "in")), "ADP"), *self.loc()]
        if r < p_ent * 0.75:
            return [word(rng.choice(("for", "at", "with")), "ADP"), *self.org()]
        if r < p_ent:
            return [word(rng.choice(("with", "for", "after")), "ADP"), *self.person()]
        r = rng.random()
        if r < 0.3:
            return [word(rng.choice(lx.ADVERBS), "ADV")]
        if r < 0.45:
            return [word("in", "ADP"), self.year()]
        if r < 0.55:  # "for $ 40"
            return [word("for", "ADP"), sym("$", "SYM"), sym(str(rng.randint(2, 999)), "NUM")]
        np = self.common_np(lx.THING_NOUNS)[0]
        return [word(rng.choice(("in", "on", "near", "after", "before", "with", "about")), "ADP"), *np]

    # --- clauses ------------------------------------------------------------------------------------------------------

    def clause(self, p_ent: float, depth: int = 0) -> Clause:
        """One clause; subordinate clauses nest up to depth 1."""
        rng = self.rng
        subj, plural = self.subject(p_ent)
        c = Clause().add("S", *subj)
        r = rng.random()
        if r < 0.4:  # transitive; a named object picks a verb that suits it ("visited Oslo", "called Ms Novak")
            obj = self.object(p_ent)
            verbs = _NAME_VERBS.get(obj[-1].ner[2:], lx.TRANSITIVE_VERBS)
            c.add("V", *self.verb_group(rng.choice(verbs), plural))
            c.add("O", *obj)
        elif r < 0.6:  # intransitive with its typical complement: "works for ORG", "lives in LOC"
            forms, adposition, label = rng.choice(lx.INTRANSITIVE_VERBS)
            c.add("V", *self.verb_group(forms, plural))
            if rng.random() < p_ent + 0.3:
                c.add("A", word(adposition, "ADP"), *self.named(label))
        elif r < 0.72:  # copula with an adjective or a noun phrase
            c.add("V", *self.copula(plural))
            if rng.random() < 0.6:
                pred = [word(rng.choice(lx.ADJECTIVES), "ADJ")]
                if rng.random() < 0.3:
                    pred.insert(0, word(rng.choice(lx.DEGREE_ADVERBS), "ADV"))
            else:
                pred = self.common_np(lx.PERSON_NOUNS, plural=plural)[0]
            c.add("O", *pred)
        elif r < 0.8 and depth == 0:  # "X says that CLAUSE"
            c.add("V", *self.verb_group(rng.choice(lx.SAY_VERBS), plural, neg_p=0.05))
            c.add("O", Clause().add("C", word("that", "SCONJ")).add("X", self.clause(p_ent, depth + 1)))
        elif r < 0.88:  # "X wants to visit Y": infinitival "to" is PART
            c.add("V", *self.verb_group(rng.choice(lx.WANT_VERBS), plural, neg_p=0.05))
            inner = Clause().add("V", word("to", "PART"), word(rng.choice(lx.TRANSITIVE_VERBS)[0], "VERB"))
            inner.add("O", *self.object(p_ent))
            c.add("O", inner)
        elif r < 0.93:  # "prices rose by 20 %"
            c = Clause().add("S", word("the", "DET"), word(rng.choice(("price", "number")), "NOUN"),
                             word("of", "ADP"), *self.common_np(lx.THING_NOUNS, plural=True, adj_p=0.2)[0])
            c.add("V", *self.verb_group(rng.choice(lx.CHANGE_VERBS), False, neg_p=0.0, tense="past"))
            c.add("A", word("by", "ADP"), sym(str(rng.randint(2, 90)), "NUM"), sym("%", "SYM"))
        else:  # "X was born in LOC in 1950"
            if subj[-1].ner != "I-PER" and subj[-1].ner != "B-PER":
                subj, plural = self.person(), False
                c = Clause().add("S", *subj)
            c.add("V", word(lx.COPULA[("past", plural)], "AUX"), word("born", "VERB"))
            c.add("A", word("in", "ADP"), *self.loc())
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            c.add("A", *self.adjunct(p_ent))
        if depth == 0 and rng.random() < 0.12:  # "..., because CLAUSE"
            sub = Clause().add("C", word(rng.choice(lx.SUBORDINATORS), "SCONJ")).add("X", self.clause(p_ent, 1))
            c.add("A", sub)
        return c

    def sentence(self, p_ent: float, intj_p: float = 0.05) -> Clause:
        """A sentence: one clause, or two joined by a conjunction, with final punctuation."""
        rng = self.rng
        s = Clause()
        if rng.random() < intj_p:  # "oh , ..."
            s.add("I", word(rng.choice(lx.INTERJECTIONS), "INTJ"), sym(","))
        s.add("M", self.clause(p_ent))
        if rng.random() < 0.15:
            s.add("J", sym(","), word(rng.choice(lx.CONJUNCTIONS), "CCONJ"))
            s.add("M", self.clause(p_ent))
        s.add("P", sym(rng.choice((".",) * 10 + ("!",))))
        return s

    def long_sentence(self, p_ent: float, min_len: int, max_len: int) -> Clause:
        """Clauses joined by ", and"/", but"/";" until the sentence has min_len..max_len tokens."""
        while True:
            s = Clause().add("M", self.clause(p_ent))
            length = len(linearise(s, False)) + 1
            while length < min_len:
                joint = [sym(","), word(self.rng.choice(lx.CONJUNCTIONS), "CCONJ")] if self.rng.random() < 0.7 \
                    else [sym(";")]
                nxt = self.clause(p_ent)
                s.add("J", *joint).add("M", nxt)
                length += len(joint) + len(linearise(nxt, False))
            if length <= max_len:
                return s.add("P", sym("."))
