"""One entry point for every task, language and split: `load_split`; and the few-shot draw: `sample_shots`.

Every split has the task's columns plus `lang`:
- ner, pos: `tokens` (list of str), `tags` (list of label names)
- xnli: `premise`, `hypothesis`, `label` (label name)
- tydiqa: `id`, `context`, `question`, `answers` ({"text": [...], "answer_start": [...]}, as SQuAD)

Split conventions (docs/protocol.md): XNLI has no target train split, its shots come from the target dev split and
are removed from it; TyDiQA's official dev file is the test split, and a target's dev split is its train split
without the shots (so it needs `k` and `seed`). English TyDiQA has no dev file at all: a fixed tenth of its train
file, the same for every run, is held out as the source dev set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from datasets import Dataset
from datasets.exceptions import DatasetGenerationError

from fslib.core.languages import POS_WITHOUT_TRAIN, SOURCE_LANG
from fslib.core.tasks import SPLITS, get_task
from fslib.data.schema import FEATURES
from fslib.formats.errors import DataError
from fslib.formats.seeds import stable_seed
from fslib.formats.treebanks import TREEBANK_SOURCES, treebank_source_problem
from fslib.formats.xtreme import read_xtreme, xtreme_path

SOURCES = ("xtreme", "hub", "ud", "uner")

def _rows(task: str, path: str, lang: str, stamp: str):
    # `stamp` (size and mtime) is only here so that datasets' cache fingerprint changes when the file does.
    for row in read_xtreme(task, Path(path)):
        yield {**row, "lang": lang}


def _read_xtreme_split(task: str, lang: str, file_split: str, data_dir: Path | str) -> Dataset:
    path = xtreme_path(data_dir, task, lang, file_split).resolve()
    stat = path.stat()
    stamp = f"{stat.st_size}-{stat.st_mtime_ns}"
    try:
        return Dataset.from_generator(
            _rows, features=FEATURES[get_task(task).kind],
            gen_kwargs={"task": task, "path": str(path), "lang": lang, "stamp": stamp},
            fingerprint=f"fslib-{stable_seed(task, path, lang, stamp):016x}")
    except DatasetGenerationError as error:
        # datasets wraps the reader's error; the reader's own message names the file and line.
        cause = error.__cause__
        raise (cause if isinstance(cause, DataError) else error) from None


def _treebank_files(source: str, data_dir: Path, lang: str, treebank: str | None) -> tuple[str | None, list[Path]]:
    """The treebank `source` reads for `lang` (its name as chosen, or as given) and the files it reads."""
    if source == "ud":
        from fslib.formats.ud import choose_treebank

        chosen = choose_treebank(data_dir, lang, treebank)
        return chosen.name, [path for _, path in chosen.files]
    from fslib.formats.uner import uner_files

    return treebank, uner_files(data_dir, lang, treebank)


def _treebank_rows(source: str, data_dir: str, lang: str, split: str, treebank: str | None, stamp: str):
    from fslib.formats.ud import read_ud_split
    from fslib.formats.uner import read_uner_split

    # `stamp` (the files' sizes and mtimes) is only here so that datasets' cache changes when a file does.
    read = read_ud_split if source == "ud" else read_uner_split
    for sentence in read(data_dir, lang, split, treebank):
        yield {"tokens": sentence.tokens, "tags": sentence.tags, "lang": lang}


def _read_treebank_split(task: str, lang: str, split: str, source: str, data_dir: Path | str | None,
                         treebank: str | None) -> Dataset:
    """One split of a treebank source ("ud" or "uner") as a Dataset (tokens, tags, lang)."""
    problem = treebank_source_problem(source, task, data_dir)
    if problem:
        raise DataError(problem)
    data_dir = Path(data_dir).resolve()
    name, files = _treebank_files(source, data_dir, lang, treebank)  # an unknown language or treebank fails here
    stamp = ";".join(f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in files)
    try:  # cached as Arrow by datasets, like the XTREME files: parsing the files again in every run costs seconds
        return Dataset.from_generator(
            _treebank_rows, features=FEATURES["tagging"],
            gen_kwargs={"source": source, "data_dir": str(data_dir), "lang": lang, "split": split,
                        "treebank": name, "stamp": stamp},
            fingerprint=f"fslib-{source}-{stable_seed(data_dir, lang, split, name, stamp):016x}")
    except DatasetGenerationError as error:
        cause = error.__cause__
        raise (cause if isinstance(cause, DataError) else error) from None


def _read_file_split(task: str, lang: str, file_split: str, source: str, data_dir: Path | str | None) -> Dataset:
    if source == "hub":
        from fslib.data.hub import load_hub_split

        return load_hub_split(task, lang, file_split)
    if data_dir is None:
        raise DataError("source='xtreme' needs data_dir: the download/ folder of google-research/xtreme's "
                        "download_data.sh (or a folder written by fslib.prepare.mini.generate)")
    return _read_xtreme_split(task, lang, file_split, data_dir)


def _without(dataset: Dataset, indices: list[int]) -> Dataset:
    excluded = set(indices)
    return dataset.select([i for i in range(len(dataset)) if i not in excluded])


def _source_dev_split(task: str, train: Dataset) -> tuple[list[int], list[int]]:
    """The source's train and dev rows of a task whose source dev split is held out of its train file: a fixed
    fraction, the same for every run."""
    order = np.random.default_rng(stable_seed(f"{task}-source-dev")).permutation(len(train))
    n_dev = max(1, round(len(train) * get_task(task).source_dev_fraction))
    return sorted(order[n_dev:].tolist()), sorted(order[:n_dev].tolist())


def shot_split(task: str, lang: str) -> str:
    """The split the shots of `lang` are drawn from: dev for XNLI targets (no target train data), else train."""
    return get_task(task).shot_split(lang)


def load_split(task: str, lang: str, split: str, *, source: str, data_dir: Path | str | None = None,
               k: int | None = None, seed: int | None = None, hold_out_source_dev: bool = True,
               treebank: str | None = None) -> Dataset:
    """Load one split of one language as a `datasets.Dataset` (columns: see the module docstring).

    source: "xtreme" (the on-disk layout of google-research/xtreme under `data_dir`), "hub" (google/xtreme), or
        "ud" (POS only: a folder of Universal Dependencies treebanks as UD releases lay them out, any language;
        see fslib.formats.ud for the choice of treebank and the carving of missing splits), or "uner" (NER only:
        a folder of Universal NER treebanks, carved as the UD sentences they annotate; see fslib.formats.uner).
    treebank: source="ud" or "uner" only: which treebank of `lang` (e.g. "PUD"); None: the reader's default.
    k, seed: for the dev split of a few-shot target, the shots to leave out (needed for TyDiQA targets, whose dev
    split is carved from train; optional for XNLI targets, whose shots come from dev).
    hold_out_source_dev: False gives English TyDiQA its whole train file as train, and no dev split (the authors'
    code trains on all of it and keeps the last checkpoint).
    """
    spec = get_task(task)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; valid sources: {', '.join(SOURCES)}")
    if source in TREEBANK_SOURCES:
        return _read_treebank_split(task, lang, split, source, data_dir, treebank)
    if lang not in spec.languages and not (source == "xtreme" and data_dir is not None):
        raise ValueError(f"unknown language {lang!r} for {task}; valid: {', '.join(spec.languages)}")
    is_target = lang != SOURCE_LANG

    if spec.target_shots_split != "train" and split == "train" and is_target:
        raise DataError(f"{spec.title} has no training data in {lang!r}: its shots come from the "
                        f"{spec.target_shots_split} split (see fslib.data.shot_split)")
    if spec.source_dev_fraction is not None and split != "test":  # dev carved from the train file
        train = _read_file_split(task, lang, "train", source, data_dir)
        if not is_target and not hold_out_source_dev:
            if split == "train":
                return train
            raise DataError(f"English {spec.title} has no dev split with hold_out_source_dev=False (the whole "
                            "train file is trained on)")
        if not is_target:
            source_train, source_dev = _source_dev_split(task, train)
            return train.select(source_train if split == "train" else source_dev)
        if split == "train":
            return train
        if k is None or seed is None:
            raise DataError(f"the {spec.title} dev split of {lang!r} is its train split without the shots: pass k "
                            f"and seed to load_split")
        return _without(train, shot_indices(train, task, k, seed))

    dataset = _read_file_split(task, lang, spec.file_split(split), source, data_dir)
    if split == spec.target_shots_split != "train" and is_target and k is not None and seed is not None:
        return _without(dataset, shot_indices(dataset, task, k, seed))
    return dataset


def _language_of(dataset: Dataset) -> str:
    languages = dataset.unique("lang")
    if len(languages) != 1:
        raise ValueError(f"shots are drawn from one language at a time; this dataset has {sorted(languages)}")
    return languages[0]


def shot_indices(dataset: Dataset, task: str, k: int, seed: int) -> list[int]:
    """Row indices of the K shots (XNLI: K per class). The draw depends only on (task, language, seed), and a
    smaller K takes a prefix of a larger K's draw (per class for XNLI), so the shots are nested across K and
    equal for every method."""
    if k < 1:
        raise ValueError(f"k must be a positive number of shots, got {k}")
    lang = _language_of(dataset)
    rng = np.random.default_rng(stable_seed("shots", task, lang, seed))
    if get_task(task).kind != "classification":
        if len(dataset) < k:
            raise DataError(f"{task} {lang!r} has {len(dataset)} examples, fewer than k={k} shots")
        return rng.permutation(len(dataset))[:k].tolist()
    labels = np.asarray(dataset["label"])
    indices = []
    for label in get_task(task).labels:  # N-way K-shot: K of every class
        of_class = np.flatnonzero(labels == label)
        if len(of_class) < k:
            raise DataError(f"{task} {lang!r} has {len(of_class)} examples of class {label!r}, fewer than k={k}")
        indices.extend(of_class[rng.permutation(len(of_class))[:k]].tolist())
    return indices


def sample_shots(dataset: Dataset, task: str, k: int, seed: int) -> Dataset:
    """The K-shot training set of one target language, drawn from `dataset` (its shot split)."""
    return dataset.select(shot_indices(dataset, task, k, seed))


def texts(dataset: Dataset) -> Iterator[str]:
    """The raw text of every row (sentences, premises and hypotheses, questions and contexts)."""
    columns = [c for c in ("premise", "hypothesis", "question", "context") if c in dataset.column_names]
    for row in dataset:
        if "tokens" in row:
            yield " ".join(row["tokens"])
        for column in columns:
            yield row[column]


def load_shots(task: str, lang: str, k: int, seed: int, *, source: str, data_dir: Path | str | None = None,
               treebank: str | None = None) -> Dataset:
    """The shots of `lang`, from the split they are drawn from; a language without that split is named."""
    try:
        pool = load_split(task, lang, shot_split(task, lang), source=source, data_dir=data_dir, treebank=treebank)
    except DataError as error:
        why = (" (XTREME-R has no UD training data for th, tl and yo; source='ud' carves a train split)"
               if task == "pos" and lang in POS_WITHOUT_TRAIN and source != "ud" else "")
        raise DataError(f"no shots for {task} {lang!r}{why}: {error}") from None
    return sample_shots(pool, task, k, seed)


def capped_rows(dataset: Dataset, cap: int, seed: int) -> Dataset:
    """At most `cap` rows of `dataset` (one language's split), drawn at random with `seed` and kept in their file
    order: a cap (`max_train_examples`) resamples with the run's seed instead of keeping the first rows for every
    seed. All rows where there are no more than `cap`."""
    if len(dataset) <= cap:
        return dataset
    rng = np.random.default_rng(stable_seed("train-cap", _language_of(dataset), seed))
    return dataset.select(sorted(rng.choice(len(dataset), size=cap, replace=False).tolist()))
