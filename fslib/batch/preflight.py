"""Checks before training: every data file the runs of a batch will read is opened and read through the same
readers the runs use, before the first training step, and every problem is listed at once.

For each run still to do, the splits it reads (fslib.engine.methods: source model, shots, dev sets for selection and
curves, test sets) are mapped to what they come from:
- source "xtreme": the files of the XTREME layout; each is read to the end, so a missing file, a test file whose
  labels XTREME's download script stripped, or a malformed line is found now and named with its line;
- source "ud": the chosen treebank's .conllu files (missing splits carved as the runs carve them); "uner": its
  .iob2 files, likewise;
- source "hub": languages google/xtreme does not have (fslib.core.languages.HUB_MISSING and the udpos, TyDiQA and
  XNLI language lists) without the network; whether the configs exist on the hub is asked once, when the hub
  can be reached, and skipped with a note offline (HF_HUB_OFFLINE=1) or when it cannot be reached.
Then there must be enough examples for K shots (K per class for XNLI).

Problems are grouped by what is wrong (one file, one language), each with the languages, splits and runs that
need it. `check_data` raises `PreflightError` listing them all, so a batch stops before it trains anything.
"""

from __future__ import annotations

import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fslib.core.languages import SOURCE_LANG
from fslib.core.tasks import get_task
from fslib.formats.errors import DataError
from fslib.store.config import RunConfig

OFFLINE_VALUES = ("1", "on", "yes", "true")


class PreflightError(ValueError):
    """The data of a batch has problems; the message lists every one."""


@dataclass(frozen=True)
class Need:
    """One split of one language that a run reads; `shots` > 0: K shots are drawn from it."""

    lang: str
    split: str  # train | dev | test, as fslib.data.load_split names them
    shots: int = 0


def needs(config: RunConfig) -> list[Need]:
    """The splits `config` reads, as its method reads them (fslib.engine.methods, fslib.engine.stages)."""
    c = config.resolved()
    targets = c.targets
    has_source_dev = get_task(c.task).has_source_dev(c.hold_out_source_dev)
    wanted: list[Need] = [Need(SOURCE_LANG, "train")] + ([Need(SOURCE_LANG, "dev")] if has_source_dev else [])
    if c.method == "zero-shot":
        return wanted + [Need(lang, "test") for lang in c.languages]
    wanted += [Need(lang, get_task(c.task).shot_split(lang), c.k) for lang in targets]
    if c.method in ("ord-FS", "ord-FS+dev"):
        wanted += [Need(lang, "dev") for lang in targets] if c.method == "ord-FS+dev" else []
        return wanted + [Need(lang, "test") for lang in [SOURCE_LANG, *targets]]
    if c.method in ("naive-co-train", "gradient-co-train") and c.target_dev_curves:
        curve = [lang for lang in targets if c.curve_langs is None or lang in c.curve_langs]
        wanted += [Need(lang, "dev") for lang in curve]
    return wanted + [Need(lang, "test") for lang in c.languages]  # test curves read the same test sets


@dataclass
class Problem:
    message: str
    where: set[tuple[str, str]] = field(default_factory=set)  # (language, split)
    runs: list[str] = field(default_factory=list)


@dataclass
class Preflight:
    """What the checks found: problems by message, notes (checks skipped), and what was read."""

    problems: dict[str, Problem] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    checked: set[tuple] = field(default_factory=set)  # the distinct splits read

    def add(self, message: str, config: RunConfig, lang: str, split: str) -> None:
        problem = self.problems.setdefault(message, Problem(message))
        problem.where.add((lang, split))
        if config.run_id not in problem.runs:
            problem.runs.append(config.run_id)

    def report(self, runs: int) -> str:
        lines = [f"preflight: {len(self.problems)} problem(s) in the data of the {runs} run(s) to do, found "
                 f"before any training:"]
        for number, problem in enumerate(self.problems.values(), 1):
            where = ", ".join(f"{lang} {split}" for lang, split in sorted(problem.where))
            example = problem.runs[0]
            lines.append(f"  {number}. {problem.message}")
            lines.append(f"     needed for {where}, by {len(problem.runs)} run(s) (e.g. {example})")
        return "\n".join(lines + [f"  note: {note}" for note in self.notes])


class _Reader:
    """Reads each split once: its example count (and per-class counts for XNLI), or the DataError it raises."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[int, Counter] | DataError] = {}
        self._ud: dict[tuple, int | DataError] = {}

    def _xtreme_file(self, task: str, path: Path) -> tuple[int, Counter]:
        from fslib.formats.xtreme import read_xtreme

        if path not in self._files:
            try:
                n, labels = 0, Counter()
                for row in read_xtreme(task, path):
                    n += 1
                    if "label" in row:
                        labels[row["label"]] += 1
                self._files[path] = (n, labels) if n else DataError(f"{path}: no examples in the file")
            except DataError as error:
                self._files[path] = error
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
                self._files[path] = DataError(f"{path}: cannot be read ({type(error).__name__}: {error})")
        found = self._files[path]
        if isinstance(found, DataError):
            raise found
        return found

    def xtreme(self, config: RunConfig, lang: str, split: str) -> tuple[int, Counter]:
        from fslib.formats.xtreme import xtreme_path

        if not config.data_dir:
            raise DataError("source='xtreme' needs data_dir: the download/ folder of google-research/xtreme's "
                            "download_data.sh (or a folder written by fslib.prepare.mini.generate)")
        # TyDiQA: the official dev file is the test split; train and dev splits come from the train file
        file_split = get_task(config.task).file_split(split)
        return self._xtreme_file(config.task, xtreme_path(config.data_dir, config.task, lang, file_split))

    def ud(self, config: RunConfig, lang: str, split: str) -> int:
        """Sentences of a split of source "ud" or "uner" (the NER annotation of UD sentences)."""
        from fslib.formats.treebanks import treebank_source_problem
        from fslib.formats.ud import read_ud_split
        from fslib.formats.uner import read_uner_split

        problem = treebank_source_problem(config.source, config.task, config.data_dir)
        if problem:
            raise DataError(problem)
        read = read_uner_split if config.source == "uner" else read_ud_split
        key = (config.source, config.data_dir, lang, split, config.treebank(lang))
        if key not in self._ud:
            try:
                sentences = read(config.data_dir, lang, split, config.treebank(lang))
                self._ud[key] = len(sentences) if sentences else DataError(
                    f"{config.data_dir}: the {split} split of {lang!r} has no sentences")
            except DataError as error:
                self._ud[key] = error
            except (OSError, UnicodeDecodeError) as error:
                self._ud[key] = DataError(f"{config.data_dir}: {lang!r} {split} cannot be read "
                                          f"({type(error).__name__}: {error})")
        found = self._ud[key]
        if isinstance(found, DataError):
            raise found
        return found


def hub_language_problem(task: str, lang: str, split: str) -> str | None:
    """Why google/xtreme (or MultiNLI) cannot give `task` `lang` `split`; None if it can. Needs no network."""
    from fslib.core.languages import TYDIQA_ID_PREFIXES
    from fslib.data.hub import HUB_DATASET, hub_config

    spec = get_task(task)
    if spec.hub_source_train and lang == SOURCE_LANG and split == "train":
        return None  # MultiNLI
    try:
        hub_config(task, lang)
    except DataError as error:
        return str(error)
    if spec.kind == "qa" and lang not in TYDIQA_ID_PREFIXES.values():
        return (f"{HUB_DATASET} tydiqa has no language {lang!r}; languages: "
                f"{', '.join(sorted(TYDIQA_ID_PREFIXES.values()))}")
    if task in ("ner", "xnli") and lang not in spec.languages:
        return f"{HUB_DATASET} has no {task} data for {lang!r}; languages: {', '.join(spec.languages)}"
    return None


def _offline() -> bool:
    return any(os.environ.get(name, "").lower() in OFFLINE_VALUES for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_configs_problems(configs: dict[str, list[RunConfig]]) -> tuple[list[tuple[str, RunConfig]], str | None]:
    """Problems for hub configs that google/xtreme does not have (config name -> runs needing it), and a note
    when the hub could not be asked (offline, unreachable)."""
    from fslib.data.hub import HUB_DATASET

    if not configs:
        return [], None
    if _offline():
        return [], (f"whether {HUB_DATASET} has the configs {', '.join(sorted(configs))} was not checked: the hub is "
                    f"switched off (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE); the runs will need them in the cache")
    try:
        from datasets import get_dataset_config_names

        available = set(get_dataset_config_names(HUB_DATASET))
    except Exception as error:  # no network, a proxy, rate limits: the runs will say more if it persists
        return [], f"whether {HUB_DATASET} has its configs was not checked: the hub could not be asked ({error!s:.200})"
    problems = []
    for name, runs in sorted(configs.items()):
        if name not in available:
            family = name.split(".")[0]
            similar = sorted(c for c in available if c.split(".")[0] == family) or sorted(available)
            problems += [(f"{HUB_DATASET} has no config {name!r}; it has: {', '.join(similar)}", run) for run in runs]
    return problems, None


def preflight(configs: Iterable[RunConfig]) -> Preflight:
    """Read every split `configs` need (see the module docstring); returns what was found."""
    from fslib.data.hub import hub_config

    found, reader = Preflight(), _Reader()
    hub: dict[str, list[RunConfig]] = defaultdict(list)
    for config in configs:
        c = config.resolved()
        for need in needs(c):
            found.checked.add((c.source, c.data_dir, c.task, need.lang, need.split, c.treebank(need.lang)))
            try:
                if c.source == "xtreme":
                    count, labels = reader.xtreme(c, need.lang, need.split)
                elif c.source in ("ud", "uner"):
                    count, labels = reader.ud(c, need.lang, need.split), Counter()
                else:
                    why = hub_language_problem(c.task, need.lang, need.split)
                    if why:
                        raise DataError(why)
                    if not (get_task(c.task).hub_source_train and need.split == "train"):
                        hub[hub_config(c.task, need.lang)].append(c)
                    continue  # sizes are not known without downloading
            except DataError as error:
                found.add(str(error), c, need.lang, need.split)
                continue
            if need.shots:
                _check_shots(found, c, need, count, labels)
    problems, note = hub_configs_problems(dict(hub))
    for message, config in problems:
        found.add(message, config, "hub", "config")
    found.notes += [note] if note else []
    return found


def _check_shots(found: Preflight, c: RunConfig, need: Need, count: int, labels: Counter) -> None:
    task = get_task(c.task)
    carved = task.source_dev_fraction is not None  # a target's dev split is its train split without the shots
    if task.kind == "classification":  # N-way K-shot
        short = {label: labels[label] for label in task.labels if labels[label] < need.shots}
        if short:
            found.add(f"{c.task} {need.lang!r} {need.split}: fewer than k={need.shots} examples of class "
                      + ", ".join(f"{label!r} ({n})" for label, n in short.items())
                      + "; K shots per class are drawn from it", c, need.lang, need.split)
    elif count < need.shots + carved:  # TyDiQA: the target's dev split is train minus the shots
        found.add(f"{c.task} {need.lang!r} {need.split}: {count} examples, fewer than k={need.shots} shots"
                  + (" plus one for its dev split" if carved else ""), c, need.lang, need.split)


def check_data(configs: list[RunConfig], stop: bool = True) -> bool:
    """The batch's preflight: read what `configs` need and print what was checked (and any note). With problems:
    raise PreflightError listing every one (`stop`), or print them to stderr and return False (a dry run, which
    goes on to print the cost)."""
    found = preflight(configs)
    if found.problems:
        if stop:
            raise PreflightError(found.report(len(configs)))
        print(found.report(len(configs)), file=sys.stderr)
        return False
    if configs:
        print(f"preflight: {len(found.checked)} language splits of the {len(configs)} run(s) to do read; "
              f"all present and labelled")
    for note in found.notes:
        print(f"preflight: note: {note}")
    return True
