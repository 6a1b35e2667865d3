"""Source-model folders: one per (task, model, seed, source-training hyper-parameters, data), shared by the
methods that start from a source-trained model. A folder holds the model and tokenizer and `source_training.json`,
written last, so its presence marks a finished source model. fslib.batch.cost counts source models by the same
identity (`source_model_identity`)."""

from __future__ import annotations

import json
from pathlib import Path

from fslib.core.languages import SOURCE_LANG
from fslib.core.tasks import get_task
from fslib.formats.seeds import stable_seed
from fslib.formats.ud import ud_files
from fslib.formats.uner import uner_files
from fslib.formats.xtreme import xtreme_path
from fslib.store.config import TRAIN_CAP_RULE, RunConfig, is_local_path, portable_path, stage_hyperparameters
from fslib.store.content_keys import content_stamp

SOURCE_RECORD = "source_training.json"


def _stamp(path: Path) -> str:
    """How source-model keys counted a file before they counted its contents."""
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def source_model_identity(config: RunConfig) -> tuple:
    """What a source model is trained from, but the data files' stamps: task, model, seed, data source, the
    source-training stage's hyper-parameters and the data's caps. fslib.batch.cost counts source models by it
    (with the data folder and the UD treebank, which the stamps stand for here)."""
    c = config.resolved()
    model = portable_path(c.model, c.output_dir) if is_local_path(c.model) else c.model  # as the config hash has it
    cap_rule = (TRAIN_CAP_RULE,) if c.max_train_examples is not None else ()  # capped: a seeded sample since
    cap_rule += ("doc-stride-is-step",) if c.doc_stride_is_step else ()  # other TyDiQA windows (unset: keys kept)
    cap_rule += ("xtreme-tagging-inputs",) if c.xtreme_tagging_inputs else ()
    return (c.task, model, c.seed, c.source, json.dumps(stage_hyperparameters(c, adapting=False), sort_keys=True),
            c.max_length, c.doc_stride, c.max_query_length, c.selection, c.hold_out_source_dev, c.max_train_examples,
            c.max_eval_examples, *cap_rule)


def source_model_folder(config: RunConfig) -> Path:
    """Where the source-trained model of `config` lives: one folder per (task, model, seed, hyper-parameters,
    data), shared by zero-shot, ord-FS, ord-FS+dev and co-FT. The data and a local model count by their files'
    contents (fslib.store.content_keys: checksums, cached), so regenerating them trains anew and any copy keeps its
    source models; a local model's path counts relative to `output_dir`, so a moved checkout keeps them too. A
    source model trained before keys counted contents (its key counted sizes and modification times) is used
    while its files keep those."""
    files = _source_files(config.resolved())
    folder = _source_model_key_folder(config, [content_stamp(path) for path in files])
    if source_model_done(folder):
        return folder
    before = _source_model_key_folder(config, [_stamp(path) for path in files])
    return before if source_model_done(before) else folder


def _source_files(c: RunConfig) -> list[Path]:
    """The files a source model is trained from: the source language's data and a local model's files."""
    files = []
    if c.source == "xtreme":
        task = get_task(c.task)  # the files of the train and dev splits: TyDiQA's dev split is in its train file
        file_splits = dict.fromkeys(task.file_split(split) for split in ("train", "dev"))
        files += [xtreme_path(c.data_dir, c.task, SOURCE_LANG, split) for split in file_splits]
    if c.source == "ud":
        files += list(ud_files(c.data_dir, SOURCE_LANG, c.treebank(SOURCE_LANG)))
    if c.source == "uner":
        files += list(uner_files(c.data_dir, SOURCE_LANG, c.treebank(SOURCE_LANG)))
    if Path(c.model).is_dir():
        files += [path for path in sorted(Path(c.model).iterdir()) if path.is_file()]
    return files


def _source_model_key_folder(config: RunConfig, stamps: list[str]) -> Path:
    c = config.resolved()
    key = stable_seed(*source_model_identity(c), *stamps)
    return Path(c.output_dir) / "source_models" / f"{c.task}-seed{c.seed}-{key:016x}"


def source_model_done(folder: Path) -> bool:
    return (folder / SOURCE_RECORD).exists()


def write_source_record(folder: Path, record: dict) -> None:
    """Written last into a source model's folder: it marks the model finished."""
    (folder / SOURCE_RECORD).write_text(json.dumps(record, indent=1))


def read_source_record(folder: Path) -> dict:
    return json.loads((folder / SOURCE_RECORD).read_text())
