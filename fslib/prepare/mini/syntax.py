"""Sentences as constituents, and their rendering into a language: word order, words, script, spacing.

A sentence is a `Clause`: a list of (role, items) constituents, where items are tokens or nested clauses. Roles:
"V" the verb group (auxiliaries, negation, verb), "P" the final punctuation, anything else (subject, object,
adjuncts, conjunctions) keeps its place. The SOV family moves "V" constituents to the end of their clause
(before "P") and adjectives after their noun. Constituents move as wholes, so entity spans (always inside one
constituent) stay contiguous and keep their BIO labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fslib.prepare.mini.lexicon import FAMILY, name_form, translate


@dataclass(frozen=True, slots=True)
class Tok:
    text: str  # the English form
    upos: str
    ner: str = "O"
    kind: str = "word"  # "word": translated; "name": transliterated only; "sym": digits, punctuation, symbols
    marks: tuple[str, ...] = ()  # TyDiQA: the answer spans this token belongs to


@dataclass(slots=True)
class Clause:
    parts: list[tuple[str, list]] = field(default_factory=list)  # (role, [Tok | Clause, ...])

    def add(self, role: str, *items: Tok | Clause) -> Clause:
        self.parts.append((role, list(items)))
        return self


def word(text: str, upos: str) -> Tok:
    return Tok(text, upos)


def sym(text: str, upos: str = "PUNCT") -> Tok:
    return Tok(text, upos, kind="sym")


def _adjectives_after_nouns(toks: list[Tok]) -> list[Tok]:
    # "the [very old] [house]" -> "the house very old"; adjectives not followed by a noun (predicates) stay.
    out: list[Tok] = []
    i, n = 0, len(toks)
    while i < n:
        j = i
        while j < n and toks[j].kind == "word" and (
                toks[j].upos == "ADJ" or (toks[j].upos == "ADV" and j + 1 < n and toks[j + 1].upos == "ADJ")):
            j += 1
        k = j
        while k < n and toks[k].upos == "NOUN":
            k += 1
        if j > i and k > j:
            out.extend(toks[j:k])
            out.extend(toks[i:j])
            i = k
        elif j > i:
            out.extend(toks[i:j])
            i = j
        else:
            out.append(toks[i])
            i += 1
    return out


def linearise(clause: Clause, sov: bool) -> list[Tok]:
    """The tokens of `clause` in the word order of an SVO (English) or SOV language."""
    parts = clause.parts
    if sov:
        parts = ([p for p in parts if p[0] not in ("V", "P")] + [p for p in parts if p[0] == "V"]
                 + [p for p in parts if p[0] == "P"])
    out: list[Tok] = []
    for _, items in parts:
        run: list[Tok] = []
        for item in items:
            if isinstance(item, Clause):
                out.extend(_adjectives_after_nouns(run) if sov else run)
                run = []
                out.extend(linearise(item, sov))
            else:
                run.append(item)
        out.extend(_adjectives_after_nouns(run) if sov else run)
    return out


def surface(tok: Tok, lang: str) -> str:
    if tok.kind == "word":
        return translate(tok.text, lang)
    if tok.kind == "name":
        return name_form(tok.text, lang)
    return tok.text


def render(clause: Clause, lang: str) -> tuple[list[Tok], list[str]]:
    """The tokens of a sentence in `lang`'s order and their surface forms (first word capitalised)."""
    toks = linearise(clause, sov=lang != "en" and FAMILY[lang] == "sov")
    forms = [surface(tok, lang) for tok in toks]
    for i, tok in enumerate(toks):
        if tok.kind != "sym":  # capitalise the first word, skipping an opening quote
            forms[i] = forms[i][:1].upper() + forms[i][1:]
            break
    return toks, forms


_ATTACH_LEFT = {".", ",", "?", "!", ":", ";"}


def detokenize(forms: list[str], start: int = 0) -> tuple[str, list[tuple[int, int]]]:
    """Running text for tokens (no space before punctuation, quotes hug what they quote), and each token's
    character span, offset by `start`."""
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = start
    open_quote = False
    glue_next = True
    for form in forms:
        glue = glue_next or form in _ATTACH_LEFT
        glue_next = False
        if form == '"':
            if open_quote:
                glue = True
            else:
                glue_next = True
            open_quote = not open_quote
        if not glue:
            pieces.append(" ")
            pos += 1
        pieces.append(form)
        spans.append((pos, pos + len(form)))
        pos += len(form)
    return "".join(pieces), spans
