"""Parameter files: one YAML schema for every experiment grid (params/paper/*.yaml, params/mini/*.yaml).

    prepare: offline          # optional: generate the offline benchmark (at data_dir) and the tiny model (at
                              # model) where missing; or `encoder`: build the real pre-trained encoder at model
                              # where missing, its vocabulary trimmed to the grid's sentences (source: ud, uner)
    defaults:                 # RunConfig fields for every run of the file (model, source, data_dir, epochs...)
      model: xlm-roberta-large
    grids:                    # each grid expands to task x method x K x seed (x target set) runs
      - task: ner
        methods: [zero-shot, ord-FS, ord-FS+dev, co-FT, naive-co-train, gradient-co-train]
        k: [1, 5, 10]         # zero-shot always runs once per seed, at K=0
        seeds: [1, 2, 3, 4, 5]
        shot_seeds: [11, 12]  # optional: draw the shots with these seeds, crossed with `seeds` (default: the seed)
        languages: all        # or a list; "all" is the task's XTREME-R list
        label: gradient-single          # optional: the method's name in the results (script study)
        target_sets: [[ar], [hi]]       # optional: one run per set of co-trained targets
        config: {alpha: 0.1}            # optional: RunConfig fields for this grid only
    cluster: {...}            # optional: an executor's settings; `executor:` names it (default slurm: see
                              # fslib.batch.slurm), the other keys are checked against the keys it takes
    x-anything: ...           # ignored: a place for YAML anchors that grids merge (`- {<<: *main, seeds: [1]}`)

Everything is checked on load, before any run starts; an error names the file, the key and the valid values.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from fslib.core.containment import ContainmentError, check_name
from fslib.core.languages import LANGUAGES, SOURCE_LANG
from fslib.core.methods import METHODS
from fslib.core.tasks import get_task, task_names
from fslib.core.yaml_files import YamlFileError, load_yaml
from fslib.formats.xtreme import available_languages
from fslib.store.config import RunConfig, field_names, is_local_path

PREPARE = (None, "offline", "encoder")
TOP_KEYS = ("prepare", "defaults", "grids", "cluster", "description")
GRID_KEYS = ("task", "methods", "k", "seeds", "shot_seeds", "languages", "label", "target_sets", "config")
# RunConfig fields that the grid itself sets; `defaults` and `config` may not.
GRID_OWNED = ("task", "method", "k", "seed", "shot_seed", "languages", "target_langs", "method_label")


class ParamsError(ValueError):
    """A parameter file that cannot be run; the message names the file and the key."""


@dataclass
class BatchParams:
    path: Path
    runs: list[RunConfig]
    prepare: str | None = None
    cluster: dict = field(default_factory=dict)


def _fail(path: Path, where: str, message: str) -> ParamsError:
    return ParamsError(f"{path}: {where}: {message}")


def _check_keys(path: Path, where: str, values: dict, valid) -> None:
    if not isinstance(values, dict):
        raise _fail(path, where, f"expected a mapping, got {type(values).__name__}")
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise _fail(path, where, f"unknown key(s) {', '.join(map(str, unknown))}; valid keys: {', '.join(valid)}")


def _int_list(path: Path, where: str, value) -> list[int]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise _fail(path, where, f"expected positive integers, got {value!r}")
    _no_repeats(path, where, values)
    return values


def _no_repeats(path: Path, where: str, values: list) -> None:
    repeated = [value for number, value in enumerate(values) if value in values[:number]]
    if repeated:
        raise _fail(path, where, f"{repeated[0]!r} is listed more than once")


def _named(path: Path, where: str, value) -> str:
    try:
        return check_name(value, where)
    except ContainmentError as error:
        raise ParamsError(f"{path}: {error}") from None


def _languages(path: Path, where: str, task: str, value, data_dir: str | None, source: str | None = None) -> list[str]:
    if value in (None, "all"):
        if source in ("ud", "uner") and data_dir:
            return [SOURCE_LANG] + [lang for lang in _ud_languages(path, data_dir, source) if lang != SOURCE_LANG]
        return list(get_task(task).languages)
    if not isinstance(value, list) or not value or not all(isinstance(lang, str) for lang in value):
        raise _fail(path, where, f"expected 'all' or a list of language codes, got {value!r}")
    known = set(get_task(task).languages)
    if source in ("ud", "uner") and data_dir:  # exactly the languages the folder has treebanks for
        known = set(_ud_languages(path, data_dir, source))
    elif data_dir:  # the kit's metadata, and whatever languages the folder has test files for
        known |= set(LANGUAGES) | set(available_languages(data_dir, task, get_task(task).file_split("test")))
    unknown = [lang for lang in value if lang not in known]
    _no_repeats(path, where, value)
    if unknown:
        raise _fail(path, where, f"unknown language(s) {', '.join(map(str, unknown))} for {task}; valid: "
                                 f"{', '.join(sorted(known))}")
    return [SOURCE_LANG] + [lang for lang in value if lang != SOURCE_LANG]


def _ud_languages(path: Path, data_dir: str, source: str = "ud") -> list[str]:
    from fslib.formats.errors import DataError
    from fslib.formats.ud import ud_languages
    from fslib.formats.uner import uner_languages

    try:
        return (uner_languages if source == "uner" else ud_languages)(data_dir)
    except DataError as error:
        raise _fail(path, "data_dir", str(error)) from None


def _expand_grid(path: Path, number: int, grid: dict, defaults: dict) -> list[RunConfig]:
    where = f"grids[{number}]"
    _check_keys(path, where, grid, GRID_KEYS)
    task = grid.get("task")
    try:
        get_task(task)  # a task module named in FSLIB_TASK_MODULES registers its task here
    except ValueError:
        raise _fail(path, f"{where}.task", f"{task!r} is not a task; valid tasks: {', '.join(task_names())}") from None
    methods = grid.get("methods", list(METHODS))
    if isinstance(methods, list):
        if not methods:
            raise _fail(path, f"{where}.methods", f"an empty list runs nothing; valid methods: {', '.join(METHODS)}")
        _no_repeats(path, f"{where}.methods", methods)
    for method in methods if isinstance(methods, list) else [methods]:
        if method not in METHODS:
            raise _fail(path, f"{where}.methods", f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    overrides = grid.get("config", {}) or {}
    _check_keys(path, f"{where}.config", overrides, [n for n in field_names() if n not in GRID_OWNED])
    values = {**defaults, **overrides}
    languages = _languages(path, f"{where}.languages", task, grid.get("languages"), values.get("data_dir"),
                           values.get("source"))
    if values.get("curve_langs") is not None:  # a filter on each run's targets: any language of the task
        _languages(path, f"{where}: curve_langs", task, values["curve_langs"], values.get("data_dir"),
                   values.get("source"))
    ks = _int_list(path, f"{where}.k", grid.get("k", [1, 5, 10]))
    seeds = _int_list(path, f"{where}.seeds", grid.get("seeds", [1, 2, 3, 4, 5]))
    shot_seeds = _int_list(path, f"{where}.shot_seeds", grid["shot_seeds"]) if "shot_seeds" in grid else [None]
    target_sets = grid.get("target_sets")
    if target_sets is not None:
        if not isinstance(target_sets, list) or not all(isinstance(s, list) and s for s in target_sets):
            raise _fail(path, f"{where}.target_sets", "expected a list of non-empty lists of language codes")
        _no_repeats(path, f"{where}.target_sets", target_sets)
        for targets in target_sets:
            _languages(path, f"{where}.target_sets", task, targets, values.get("data_dir"), values.get("source"))
    if grid.get("label") is not None:
        _named(path, f"{where}.label", grid["label"])
    runs = []
    for method in methods if isinstance(methods, list) else [methods]:
        for k, seed, shot_seed, targets in itertools.product([0] if method == "zero-shot" else ks, seeds,
                                                             shot_seeds, target_sets or [None]):
            # a run on a target set evaluates the source and those targets only
            run_languages = [SOURCE_LANG, *targets] if targets else languages
            try:
                config = RunConfig(task=task, method=method, k=k, seed=seed, shot_seed=shot_seed,
                                   languages=run_languages,
                                   target_langs=targets, method_label=grid.get("label"), **values)
                config.resolved()
            except (TypeError, ValueError) as error:
                raise _fail(path, where, str(error)) from None
            runs.append(config)
    return runs


def load_params(path: Path | str) -> BatchParams:
    """Read and validate a parameter file and expand its grids into run configurations."""
    path = Path(path)
    try:
        document = load_yaml(path)
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such parameter file") from None
    except YamlFileError as error:
        raise ParamsError(str(error)) from None
    document = document or {}
    # keys starting with "x-" hold YAML anchors for the grids to merge (`<<: *main`), as docker-compose allows
    _check_keys(path, "top level", {key: v for key, v in document.items() if not str(key).startswith("x-")}
                if isinstance(document, dict) else document, TOP_KEYS)
    prepare = document.get("prepare")
    if prepare not in PREPARE:
        raise _fail(path, "prepare", f"{prepare!r} is not valid; valid: offline, encoder (or leave it out)")
    defaults = document.get("defaults", {}) or {}
    _check_keys(path, "defaults", defaults, [n for n in field_names() if n not in GRID_OWNED])
    grids = document.get("grids")
    if not isinstance(grids, list) or not grids:
        raise _fail(path, "grids", "expected a non-empty list of grids")
    runs = [run for number, grid in enumerate(grids) for run in _expand_grid(path, number, grid, defaults)]
    if prepare == "offline" and any(run.source != "xtreme" or not run.data_dir for run in runs):
        raise _fail(path, "prepare", "offline needs source: xtreme and a data_dir (where the benchmark is written)")
    if prepare == "encoder" and any(run.source not in ("ud", "uner") or not run.data_dir for run in runs):
        raise _fail(path, "prepare", "encoder needs source: ud or uner and a data_dir (the UD or UNER folder whose "
                                     "sentences the encoder's vocabulary is trimmed to)")
    missing = sorted({run.model for run in runs
                      if is_local_path(run.model) and not Path(run.model).expanduser().is_dir()})
    if missing and prepare is None:  # `prepare` builds the model where it is missing
        raise _fail(path, "model", f"no model folder at {missing[0]} (a local path: a folder saved by "
                                   f"save_pretrained); give an existing folder or a hub id such as xlm-roberta-large")
    ids = [run.run_id for run in runs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise _fail(path, "grids", f"the same run twice: {', '.join(duplicates)}")
    cluster = document.get("cluster", {}) or {}
    if cluster:
        from fslib.batch.executors import DEFAULT_CLUSTER_EXECUTOR, cluster_settings, executor_class

        if not isinstance(cluster, dict):
            raise _fail(path, "cluster", f"expected a mapping of settings, got {cluster!r}")
        name = cluster.get("executor", DEFAULT_CLUSTER_EXECUTOR)
        try:
            executor_class(name).check_cluster(cluster_settings(cluster, name), f"{path}: cluster")
        except ValueError as error:
            raise ParamsError(str(error) if str(error).startswith(str(path)) else
                              f"{path}: cluster.executor: {error}") from None
    return BatchParams(path, runs, prepare, cluster)
