"""Universal Dependencies treebanks as UD releases lay them out (`source="ud"`, POS only).

`data_dir` holds one folder per treebank, as in a UD release archive or a clone of the treebanks' GitHub
repositories:

    UD_<Language>-<Name>/<code>_<name>-ud-{train,dev,test}.conllu

The language of a treebank is the code before the `_` of its file names (`en_ewt-ud-dev.conllu` is `en`). A
sentence is its syntactic words with their UPOS tags: multi-word token ranges (`3-4 du`) and empty nodes (`5.1`)
are skipped, so French "du" is read as its words "de" and "le", as UD's own POS scores count them. Files are
parsed with the `conllu` package; every line is checked first, and a malformed one is an error naming the file
and the line.

Which treebank: a language with several (English EWT and PUD) takes the one named by `treebank` (its folder
name `UD_English-PUD`, or `PUD`, or the file name part `pud`; any case), else the default: a treebank with a
train file before one without, then the one with the most bytes of .conllu, then the folder name.

Missing splits are carved (see `carve`): many treebanks have no train or dev file (the PUD test sets, Yoruba,
and English EWT without its train file in the shared copy). A missing split takes its sentences from one donor
file: the treebank's train file if it has one, else its dev file, else its test file. Each sentence of the
donor goes to the donor's own split or to one of the missing splits, chosen by a stable hash of its sent_id, in
proportion to CARVE_WEIGHTS among those splits (a test-only treebank: 40% train, 10% dev, 50% test; a treebank
with dev and test but no train: 80% of its dev file becomes train, 20% stays dev). Every other file keeps its
split. So over train, dev and test every sentence of the files appears exactly once, the same on every machine
and in every release that keeps the sent_ids.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import conllu

from fslib.core.tasks import SPLITS, UPOS_LABELS
from fslib.formats.errors import DataError, file_error
from fslib.formats.seeds import stable_seed
from fslib.formats.text import utf8_text

FOLDER = re.compile(r"^UD_(?P<language>[^-]+)-(?P<name>.+)$")
FILE = re.compile(r"^(?P<code>[^_]+)_(?P<name>.+)-ud-(?P<split>train|dev|test)\.conllu$")
CARVE_WEIGHTS = {"train": 0.4, "dev": 0.1, "test": 0.5}  # shares of a donor file's sentences (renormalised)
DONOR_ORDER = ("train", "dev", "test")
FIELDS = 10  # ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC
PARSED_FIELDS = ("id", "form", "lemma", "upos")  # the rest are not needed (and parsing FEATS and MISC is slow)
HOW_TO_GET = ("download a UD release (https://universaldependencies.org/#download, ud-treebanks-v2.x.tgz) or "
              "clone the treebanks' repositories (https://github.com/UniversalDependencies/UD_<Language>-<Name>) "
              "into data_dir")


def default_ud_dir() -> Path:
    """The shared UD folder: $FSLIB_UD_DIR, else `shared/data/ud` beside the repository root."""
    return Path(os.environ.get("FSLIB_UD_DIR", Path(__file__).resolve().parents[3] / "shared" / "data" / "ud"))


@dataclass(frozen=True)
class Treebank:
    """A UD treebank folder; fslib.formats.uner's treebanks are the same with other patterns and file suffix."""

    folder: Path
    lang: str  # the code prefix of its file names
    files: tuple[tuple[str, Path], ...]  # (split, path) for the splits that have a file
    FOLDER: ClassVar[re.Pattern] = FOLDER  # its folder's name: <PREFIX>_<Language>-<Name>
    FILE: ClassVar[re.Pattern] = FILE  # its files' names: <code>_<name>-ud-<split>.<suffix>
    GLOB: ClassVar[str] = "*-ud-*.conllu"
    WHAT: ClassVar[str] = "UD"
    HOW_TO_GET: ClassVar[str] = HOW_TO_GET

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def split_files(self) -> dict[str, Path]:
        return dict(self.files)

    @property
    def size(self) -> int:
        return sum(path.stat().st_size for _, path in self.files)

    @property
    def file_name(self) -> str:
        """The name part of its file names (`ewt`, `pud`)."""
        return self.FILE.match(self.files[0][1].name)["name"]

    def matches(self, name: str) -> bool:
        """`name` is this treebank's folder name, the part after `<PREFIX>_<Language>-`, or its file name part
        (any case)."""
        match = self.FOLDER.match(self.name)
        names = {self.name, match["name"] if match else self.name}
        names |= {self.FILE.match(path.name)["name"] for _, path in self.files}
        return name.lower() in {n.lower() for n in names}

    def check(self) -> None:
        """Raise DataError where the folder contradicts its files (nothing to check for UD)."""


def scan_treebanks(data_dir: Path | str, kind: type[Treebank]) -> dict:
    """Every treebank of `kind` under `data_dir`, by language code (a folder counts if it has a file matching
    `kind.GLOB`)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"{root}: no such {kind.WHAT} folder; {kind.HOW_TO_GET}")
    found: dict[str, list[Treebank]] = {}
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        files = {}
        for path in sorted(folder.glob(kind.GLOB)):
            match = kind.FILE.match(path.name)
            if match:
                files[(match["code"], match["split"])] = path
        for lang in sorted({code for code, _ in files}):
            splits = tuple((split, files[(lang, split)]) for split in SPLITS if (lang, split) in files)
            treebank = kind(folder, lang, splits)
            treebank.check()
            found.setdefault(lang, []).append(treebank)
    return found


def find_treebanks(data_dir: Path | str) -> dict[str, list[Treebank]]:
    """Every UD treebank under `data_dir`, by language code (a folder counts if it has a *-ud-*.conllu file)."""
    return scan_treebanks(data_dir, Treebank)


def ud_languages(data_dir: Path | str) -> list[str]:
    """The language codes that have a treebank under `data_dir`."""
    return sorted(find_treebanks(data_dir))


def choose_treebank(data_dir: Path | str, lang: str, treebank: str | None = None) -> Treebank:
    """The UD treebank of `lang` named `treebank`, or by default: one with a train file first, then the largest."""
    return pick_treebank(find_treebanks(data_dir), data_dir, lang, treebank, "UD", HOW_TO_GET)


def pick_treebank(treebanks: dict, data_dir: Path | str, lang: str, treebank: str | None, what: str,
                  how_to_get: str):
    """Of `treebanks` (language code -> its treebanks of `what`, e.g. "UD", found under `data_dir`), the one of
    `lang` named `treebank`, or by default: one with a train file first, then the largest."""
    if lang not in treebanks:
        raise DataError(f"{data_dir}: no {what} treebank for language {lang!r}; languages there: "
                        f"{', '.join(sorted(treebanks)) or 'none'}; {how_to_get}")
    candidates = treebanks[lang]
    if treebank is not None:
        named = [t for t in candidates if t.matches(treebank)]
        if not named:
            raise DataError(f"{data_dir}: no {what} treebank {treebank!r} for {lang!r}; its treebanks: "
                            f"{', '.join(t.name for t in candidates)}")
        return named[0]
    return min(candidates, key=lambda t: ("train" not in t.split_files, -t.size, t.name))


@dataclass(frozen=True)
class Sentence:
    sent_id: str
    tokens: list[str]
    tags: list[str]


def _check_line(path: Path, number: int, line: str) -> None:
    fields = line.split("\t")
    if len(fields) != FIELDS:
        raise file_error(path, number, f"expected {FIELDS} tab-separated CoNLL-U fields, found {len(fields)}: "
                                       f"{line[:80]!r}")
    if not re.fullmatch(r"\d+(-\d+|\.\d+)?", fields[0]):
        raise file_error(path, number, f"ID {fields[0]!r} is not a word index, a range (3-4) or an empty node "
                                       f"(5.1)")
    if fields[0].isdigit() and fields[3] not in UPOS_LABELS:
        raise file_error(path, number, f"UPOS {fields[3]!r} is not one of {', '.join(UPOS_LABELS)}")


@functools.lru_cache(maxsize=64)
def _read_cached(path: str, stamp: tuple[int, int]) -> tuple[Sentence, ...]:
    path_ = Path(path)
    sentences, block, start = [], [], 1
    with utf8_text(path_) as lines:
        numbered = list(enumerate(lines, 1)) + [(None, "\n")]  # a blank line closes the last sentence
    for number, raw in numbered:
        line = raw.rstrip("\r\n")
        if line.strip():
            if not block:
                start = number
            if not line.startswith("#"):
                _check_line(path_, number, line)
            block.append(line)
            continue
        if not block:
            continue
        try:
            (tokenlist,) = conllu.parse("\n".join(block) + "\n\n", fields=PARSED_FIELDS)
        except (conllu.exceptions.ParseException, ValueError) as error:
            raise file_error(path_, start, f"the sentence starting here is not valid CoNLL-U: {error}") from None
        words = [t for t in tokenlist if isinstance(t["id"], int)]  # not ranges (tuples) or empty nodes
        if not words:
            raise file_error(path_, start, "a sentence without words")
        sent_id = tokenlist.metadata.get("sent_id") or f"{path_.name}:{start}"
        sentences.append(Sentence(sent_id, [t["form"] for t in words], [t["upos"] for t in words]))
        block = []
    return tuple(sentences)


def read_conllu(path: Path | str) -> list[Sentence]:
    """The sentences of one .conllu file: syntactic words and UPOS tags (parsed once per process and file
    version)."""
    stat = Path(path).stat()
    return list(_read_cached(str(Path(path).resolve()), (stat.st_size, stat.st_mtime_ns)))


def _unit_interval(sent_id: str) -> float:
    return stable_seed("ud-carve", sent_id) / 2**64


def carve(treebank: Treebank) -> dict[str, list[Sentence]]:
    """The sentences of each split (train, dev, test) of `treebank`, with missing splits carved out of a donor
    file (see the module docstring)."""
    return carve_splits({split: read_conllu(path) for split, path in treebank.split_files.items()})


def carve_splits(splits: dict[str, list], key=lambda sentence: sentence.sent_id) -> dict[str, list]:
    """The sentences of each split from those of the files there are (`splits`: split -> sentences), missing
    splits carved out of a donor file by the stable hash of `key(sentence)` (by default its sent_id; see the
    module docstring). Shared with other readers of UD sentences (fslib.formats.uner), so that a sentence lands in
    the same split whatever its annotation."""
    files = splits
    missing = [split for split in SPLITS if split not in files]
    if not missing:
        return splits
    donor = next(split for split in DONOR_ORDER if split in files)
    shares = [split for split in SPLITS if split == donor or split in missing]
    total = sum(CARVE_WEIGHTS[split] for split in shares)
    bounds, cumulative = [], 0.0
    for split in shares:
        cumulative += CARVE_WEIGHTS[split] / total
        bounds.append((cumulative, split))
    carved: dict[str, list[Sentence]] = {split: [] for split in shares}
    for sentence in splits[donor]:
        u = _unit_interval(key(sentence))
        carved[next((split for bound, split in bounds if u < bound), shares[-1])].append(sentence)
    return {split: carved[split] if split in carved else splits[split] for split in SPLITS}


def read_ud_split(data_dir: Path | str, lang: str, split: str, treebank: str | None = None) -> list[Sentence]:
    """The sentences of one split of `lang`'s chosen treebank under `data_dir`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return carve(choose_treebank(data_dir, lang, treebank))[split]


def ud_files(data_dir: Path | str, lang: str, treebank: str | None = None) -> list[Path]:
    """The .conllu files of `lang`'s chosen treebank (what a source model's cache key depends on)."""
    return [path for _, path in choose_treebank(data_dir, lang, treebank).files]


def ud_corpus(data_dir: Path | str, languages: list[str], treebanks: dict[str, str] | None = None) -> Iterator[str]:
    """Every sentence (words joined by spaces) of the chosen treebank of each of `languages`, all splits: the
    texts an encoder's vocabulary is trimmed to."""
    for lang in languages:
        for _, path in choose_treebank(data_dir, lang, (treebanks or {}).get(lang)).files:
            for sentence in read_conllu(path):
                yield " ".join(sentence.tokens)
