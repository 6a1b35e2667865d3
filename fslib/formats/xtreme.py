"""Readers for the on-disk layout that google-research/xtreme's `scripts/download_data.sh` writes.

`data_dir` is the script's `download/` folder:

    panx/{train,dev,test}-{lang}.tsv      token<TAB>label lines, a blank line between sentences
    udpos/{train,dev,test}-{lang}.tsv     token<TAB>UPOS lines, a blank line between sentences
    xnli/{train,dev,test}-{lang}.tsv      premise<TAB>hypothesis<TAB>label rows (csv quoting; train-en from MultiNLI)
    tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.{lang}.train.json   SQuAD v1.1 JSON
    tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json       SQuAD v1.1 JSON (the paper's test set)

XTREME's script strips the labels of test files (tokens only, two-column XNLI rows, empty TyDiQA answers); the
readers say so instead of yielding unlabelled rows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from fslib.core.tasks import XNLI_LABELS, Task, get_task
from fslib.formats.errors import DataError, file_error
from fslib.formats.text import utf8_text

HOW_TO_GET = (
    "run google-research/xtreme's scripts/download_data.sh and pass its download/ folder as data_dir "
    "(PAN-X needs AmazonPhotos.zip downloaded by hand first), or load from the hub with source='hub'"
)
_STRIPPED = ("XTREME's download_data.sh removes the labels of test files; use labelled files "
             "(or source='hub', whose test splits keep their labels)")


def xtreme_path(data_dir: Path | str, task: str, lang: str, file_split: str) -> Path:
    """The file of `task`/`lang`/`file_split` (a split as named on disk: train, dev or test)."""
    path = Path(data_dir) / _pattern(task).format(split=file_split, lang=lang)
    if not path.is_file():
        found = available_languages(data_dir, task, file_split)
        present = f"languages with this split there: {', '.join(found)}" if found else "no such files there"
        raise DataError(f"{path}: no such file (expected for task {task!r}, language {lang!r}, split "
                        f"{file_split!r}; {present}); to get the data, {HOW_TO_GET}")
    return path


def available_languages(data_dir: Path | str, task: str, file_split: str) -> list[str]:
    """The languages that have a `file_split` file of `task` under `data_dir`."""
    prefix, suffix = _pattern(task).format(split=file_split, lang="{lang}").split("{lang}")
    root = Path(data_dir)
    return sorted(str(path.relative_to(root))[len(prefix):-len(suffix)] for path in root.glob(f"{prefix}*{suffix}"))


def _pattern(task: str) -> str:
    spec = get_task(task)
    if not spec.xtreme_file:
        raise ValueError(f"task {task!r} has no files in XTREME's layout (its Task has no xtreme_file)")
    return spec.xtreme_file


def read_tagging(path: Path, labels: tuple[str, ...]) -> Iterator[dict]:
    """Sentences of a token<TAB>label file: {"tokens": [...], "tags": [...]}."""
    valid = set(labels)
    tokens: list[str] = []
    tags: list[str] = []
    with utf8_text(path) as lines:
        for number, line in enumerate(lines, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                if tokens:
                    yield {"tokens": tokens, "tags": tags}
                    tokens, tags = [], []
                continue
            fields = line.split("\t")
            if len(fields) == 1:
                raise file_error(path, number, f"a token without a label; {_STRIPPED}")
            if len(fields) != 2 or not fields[0]:
                raise file_error(path, number, f"expected 'token<TAB>label', found {len(fields)} "
                                                f"tab-separated fields: {line!r}")
            if fields[1] not in valid:
                raise file_error(path, number, f"label {fields[1]!r} is not in the label set "
                                                f"({', '.join(labels)})")
            tokens.append(fields[0])
            tags.append(fields[1])
    if tokens:
        yield {"tokens": tokens, "tags": tags}


def read_xnli(path: Path, labels: tuple[str, ...] = XNLI_LABELS) -> Iterator[dict]:
    """Pairs of an XNLI file: {"premise", "hypothesis", "label"} (MultiNLI's 'contradictory' read as
    'contradiction', as XTREME's preprocessing does)."""
    with utf8_text(path, newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        for row in rows:
            if len(row) == 2:
                raise file_error(path, rows.line_num, f"a pair without a label; {_STRIPPED}")
            if len(row) != 3:
                raise file_error(path, rows.line_num, f"expected 'premise<TAB>hypothesis<TAB>label', found "
                                                      f"{len(row)} fields")
            premise, hypothesis, label = row
            label = "contradiction" if label == "contradictory" else label
            if label not in labels:
                raise file_error(path, rows.line_num, f"label {label!r} is not one of {', '.join(labels)}")
            yield {"premise": premise, "hypothesis": hypothesis, "label": label}


def read_tydiqa(path: Path) -> Iterator[dict]:
    """Questions of a SQuAD v1.1 JSON file: {"id", "context", "question", "answers": {"text", "answer_start"}}."""
    try:
        with utf8_text(path) as f:
            data = json.load(f)
        documents = data["data"]
    except json.JSONDecodeError as error:
        raise file_error(path, error.lineno, f"not valid JSON ({error.msg})") from None
    except (KeyError, TypeError):
        raise file_error(path, None, "not SQuAD v1.1 JSON: no top-level 'data' list") from None
    for document in documents:
        for paragraph in document["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                texts = [answer["text"] for answer in qa["answers"]]
                starts = [int(answer["answer_start"]) for answer in qa["answers"]]
                if not any(texts):
                    raise file_error(path, None, f"question {qa['id']!r} has no answer text; {_STRIPPED}")
                for text, start in zip(texts, starts):
                    if context[start:start + len(text)] != text:
                        raise file_error(path, None, f"question {qa['id']!r}: answer {text!r} is not at "
                                                     f"answer_start {start} of its context")
                yield {"id": str(qa["id"]), "context": context, "question": qa["question"],
                       "answers": {"text": texts, "answer_start": starts}}


# A task's file_format -> its reader (fslib.core.tasks.Task.file_format)
READERS: dict[str, Callable[[Path, Task], Iterator[dict]]] = {
    "tagging": lambda path, task: read_tagging(path, task.labels),
    "nli": lambda path, task: read_xnli(path, task.labels),
    "squad": lambda path, task: read_tydiqa(path),
}


def read_xtreme(task: str, path: Path) -> Iterator[dict]:
    """Rows of one XTREME file of `task`, validated line by line (the reader of the task's file format)."""
    try:
        spec = get_task(task)
    except ValueError as error:
        raise ValueError(f"{path}: no XTREME reader: {error}") from None
    return READERS[spec.file_format](path, spec)
