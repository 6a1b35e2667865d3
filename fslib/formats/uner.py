"""Universal NER treebanks as UNER releases lay them out (`source="uner"`, NER only).

`data_dir` holds one folder per treebank, as in a clone of the UNER repositories
(https://github.com/UniversalNER/UNER_<Language>-<Name>) or the shared copy in `../shared/data/uner`:

    UNER_<Language>-<Name>/<code>_<name>-ud-{train,dev,test}.iob2

A file is CoNLL-style blocks, one sentence per block separated by blank lines, `#` comment lines (`# sent_id =
...`), then one token a line: tab-separated index, token, IOB2 tag and, in UNER v1, two provenance columns (any
columns after the third are ignored). The language of a treebank is the code before the `_` of its file names
(`hr_set-ud-dev.iob2` is `hr`), checked against the folder's language name where fslib.core.languages knows it. Tags
are PAN-X's (O, B-/I- PER, ORG, LOC); OTH, which two sets (Croatian and Serbian SET) also have, is read as O
because PAN-X, and so the paper's label set, has no such type. A malformed line, a token index out of order or a
tag outside that set is an error naming the file and line.

Which treebank and which splits, exactly as for the UD treebanks the sentences come from (fslib.formats.ud): the
treebank named by `treebank`, else one with a train file, then the largest; missing splits carved from a donor
file by the stable hash of each sentence's UD sent_id (fslib.formats.ud.carve_splits). English EWT (dev and test
here) so trains on 80% of its dev file, keeps 20% as dev and tests on its test file; a PUD test set gives 40%
train, 10% dev, 50% test.

Same split as POS: UNER v1 renamed some sentences (the PUD sets: `n01001-0001` for UD's `n01001011`, Chinese
`batch-0000-0001`). Where the UD treebank of the same language and name is at hand (`$FSLIB_UD_DIR`, else the
folder `ud` beside `data_dir`), each sentence is carved by the sent_id of its UD sentence: the same sent_id if
UD has it, else the UD sentence with the same words (whitespace and Unicode composition aside; a text UD has
only once), else the same position in the same document (`<doc>-<n>`: the n-th sentence of UD's `<doc>...`).
A sentence matched by none, or any sentence when no UD treebank is at hand, is carved by its own sent_id: its
split is then still stable, but not necessarily that of its POS annotation.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fslib.core.languages import code_of_name
from fslib.core.tasks import NER_LABELS, SPLITS
from fslib.formats.errors import DataError, file_error
from fslib.formats.ud import Treebank, carve_splits, pick_treebank, scan_treebanks

FOLDER = re.compile(r"^UNER_(?P<language>[^-]+)-(?P<name>.+)$")
FILE = re.compile(r"^(?P<code>[^_]+)_(?P<name>.+)-ud-(?P<split>train|dev|test)\.iob2$")
READ_AS_O = ("B-OTH", "I-OTH")  # PAN-X (the paper's NER data) has no OTH type
MIN_COLUMNS = 3  # index, token, tag
DOC_ORDINAL = re.compile(r"^(?P<doc>.+)-(?P<n>\d+)$")
HOW_TO_GET = ("clone the UNER treebanks (https://github.com/UniversalNER/UNER_<Language>-<Name>) into data_dir, "
              "or point data_dir at ../shared/data/uner")


def default_uner_dir() -> Path:
    """The shared UNER folder: $FSLIB_UNER_DIR, else `shared/data/uner` beside the repository root."""
    return Path(os.environ.get("FSLIB_UNER_DIR", Path(__file__).resolve().parents[3] / "shared" / "data" / "uner"))


def ud_dir_for(data_dir: Path | str) -> Path:
    """The UD folder whose sent_ids a UNER folder's sentences are carved by: $FSLIB_UD_DIR, else `ud` beside it."""
    return Path(os.environ.get("FSLIB_UD_DIR", Path(data_dir).resolve().parent / "ud"))


@dataclass(frozen=True)
class UnerTreebank(Treebank):
    """A UNER treebank folder: the files of the UD treebank it annotates (same name part), in IOB2."""

    FOLDER: ClassVar[re.Pattern] = FOLDER
    FILE: ClassVar[re.Pattern] = FILE
    GLOB: ClassVar[str] = "*-ud-*.iob2"
    WHAT: ClassVar[str] = "UNER"
    HOW_TO_GET: ClassVar[str] = HOW_TO_GET

    def check(self) -> None:
        """The language the folder names is the one its files are named for."""
        folder_match = FOLDER.match(self.name)
        named = code_of_name(folder_match["language"]) if folder_match else None
        if named is not None and named != self.lang:
            raise DataError(f"{self.folder}: the folder says {folder_match['language']} ({named!r}) but its files "
                            f"are named for {self.lang!r}")


def find_uner_treebanks(data_dir: Path | str) -> dict[str, list[UnerTreebank]]:
    """Every treebank under `data_dir`, by language code (a folder counts if it has a *-ud-*.iob2 file)."""
    return scan_treebanks(data_dir, UnerTreebank)


def uner_languages(data_dir: Path | str) -> list[str]:
    """The language codes that have a UNER treebank under `data_dir`."""
    return sorted(find_uner_treebanks(data_dir))


def choose_uner_treebank(data_dir: Path | str, lang: str, treebank: str | None = None) -> UnerTreebank:
    """The UNER treebank of `lang` named `treebank`, or by default: one with a train file first, then the largest."""
    return pick_treebank(find_uner_treebanks(data_dir), data_dir, lang, treebank, "UNER", HOW_TO_GET)


@dataclass(frozen=True)
class NerSentence:
    sent_id: str
    tokens: list[str]
    tags: list[str]
    carve_id: str = ""  # the sent_id its split is carved by (its UD sentence's, where found)


def _tag(path: Path, number: int, tag: str) -> str:
    if tag in READ_AS_O:
        return "O"
    if tag not in NER_LABELS:
        raise file_error(path, number, f"tag {tag!r} is not one of {', '.join(NER_LABELS + READ_AS_O)}")
    return tag


@functools.lru_cache(maxsize=64)
def _read_cached(path: str, stamp: tuple[int, int]) -> tuple[NerSentence, ...]:
    path_ = Path(path)
    sentences, tokens, tags, sent_id, start = [], [], [], None, None
    with open(path_, encoding="utf-8") as lines:
        numbered = list(enumerate(lines, 1)) + [(None, "\n")]  # a blank line closes the last sentence
    for number, raw in numbered:
        line = raw.rstrip("\r\n")
        if not line.strip():  # the end of a block (a block of comments only is skipped)
            if tokens:
                sentences.append(NerSentence(sent_id or f"{path_.name}:{start}", tokens, tags))
            tokens, tags, sent_id, start = [], [], None, None
            continue
        start = start or number
        if line.startswith("#"):
            if line.startswith("# sent_id") and "=" in line:
                sent_id = line.split("=", 1)[1].strip()
            continue
        fields = line.split("\t")
        if len(fields) < MIN_COLUMNS:
            raise file_error(path_, number, f"expected tab-separated index, token and IOB2 tag, found "
                                            f"{len(fields)} column(s): {line[:80]!r}")
        if fields[0] != str(len(tokens) + 1):
            raise file_error(path_, number, f"token index {fields[0]!r}, expected {len(tokens) + 1} (a missing "
                                            f"blank line between sentences, or a dropped line?)")
        tokens.append(fields[1])
        tags.append(_tag(path_, number, fields[2]))
    return tuple(sentences)


def read_iob2(path: Path | str) -> list[NerSentence]:
    """The sentences of one .iob2 file (parsed once per process and file version), OTH read as O."""
    stat = Path(path).stat()
    return list(_read_cached(str(Path(path).resolve()), (stat.st_size, stat.st_mtime_ns)))


def _words(tokens: list[str]) -> str:
    return unicodedata.normalize("NFC", "".join("".join(tokens).split()))


def ud_carve_ids(sentences: list[NerSentence], ud_sentences: list) -> list[str]:
    """For each UNER sentence, the sent_id of its UD sentence (see the module docstring), else its own."""
    ids = {s.sent_id for s in ud_sentences}
    by_words: dict[str, list[str]] = {}
    by_doc: dict[str, list[str]] = {}
    for s in ud_sentences:
        by_words.setdefault(_words(s.tokens), []).append(s.sent_id)
    for s in ud_sentences:  # UD's PUD sent_ids are <doc><3-digit number>: n01001011 is in document n01001
        by_doc.setdefault(s.sent_id[:-3], []).append(s.sent_id)
    carved = []
    for sentence in sentences:
        same_words = by_words.get(_words(sentence.tokens), [])
        doc = DOC_ORDINAL.match(sentence.sent_id)
        in_doc = by_doc.get(doc["doc"], []) if doc else []
        if sentence.sent_id in ids:
            carved.append(sentence.sent_id)
        elif len(same_words) == 1:
            carved.append(same_words[0])
        elif doc and 1 <= int(doc["n"]) <= len(in_doc):
            carved.append(in_doc[int(doc["n"]) - 1])
        else:
            carved.append(sentence.sent_id)
    return carved


def _ud_treebank(data_dir: Path | str, treebank: UnerTreebank):
    from fslib.formats.ud import choose_treebank

    try:
        return choose_treebank(ud_dir_for(data_dir), treebank.lang, treebank.file_name)
    except DataError:  # no UD folder, or no such treebank in it: carved by UNER's own sent_ids
        return None


def carve_uner(data_dir: Path | str, treebank: UnerTreebank) -> dict[str, list[NerSentence]]:
    """The sentences of each split of `treebank`, missing splits carved as fslib.formats.ud carves them."""
    from fslib.formats.ud import read_conllu

    ud = _ud_treebank(data_dir, treebank)
    ud_sentences = [s for _, path in ud.files for s in read_conllu(path)] if ud else []
    splits = {}
    for split, path in treebank.files:
        sentences = read_iob2(path)
        splits[split] = [NerSentence(s.sent_id, s.tokens, s.tags, carve_id)
                         for s, carve_id in zip(sentences, ud_carve_ids(sentences, ud_sentences))]
    return carve_splits(splits, key=lambda sentence: sentence.carve_id)


def read_uner_split(data_dir: Path | str, lang: str, split: str, treebank: str | None = None) -> list[NerSentence]:
    """The sentences of one split of `lang`'s chosen UNER treebank under `data_dir`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return carve_uner(data_dir, choose_uner_treebank(data_dir, lang, treebank))[split]


def uner_files(data_dir: Path | str, lang: str, treebank: str | None = None) -> list[Path]:
    """The files `lang`'s splits depend on (what a source model's cache key counts): its .iob2 files and the
    .conllu files of the UD treebank its sentences are carved by."""
    chosen = choose_uner_treebank(data_dir, lang, treebank)
    ud = _ud_treebank(data_dir, chosen)
    return [path for _, path in chosen.files] + ([path for _, path in ud.files] if ud else [])


def uner_corpus(data_dir: Path | str, languages: list[str], treebanks: dict[str, str] | None = None) -> Iterator[str]:
    """Every sentence (tokens joined by spaces) of the chosen treebank of each of `languages`, all splits: the
    texts an encoder's vocabulary is trimmed to."""
    for lang in languages:
        for _, path in choose_uner_treebank(data_dir, lang, (treebanks or {}).get(lang)).files:
            for sentence in read_iob2(path):
                yield " ".join(sentence.tokens)
