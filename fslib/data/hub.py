"""The Hugging Face hub source: `google/xtreme` (parquet configs) plus MultiNLI for the English XNLI train set.

The `from_hub_*` functions convert the hub's schema (ClassLabel ids, `sentence1`/`gold_label`, language encoded
in TyDiQA ids) to the kit's columns; they are plain functions on `datasets.Dataset` so they can be tested on
in-memory datasets with the hub's exact schema.
"""

from __future__ import annotations

from datasets import Dataset, load_dataset

from fslib.core.languages import HUB_MISSING, HUB_UD_NAMES, TYDIQA_ID_PREFIXES
from fslib.core.tasks import get_task
from fslib.data.schema import FEATURES
from fslib.formats.errors import DataError

HUB_DATASET = "google/xtreme"
# The kit's file split names on the hub. TyDiQA's "validation" (its dev file) is the paper's test set.
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def hub_config(task: str, lang: str) -> str:
    """The google/xtreme config of `task` in `lang` (the task's `hub_config`, "{lang}" and "{ud_name}" filled)."""
    spec = get_task(task)
    if spec.hub_config is None:
        raise DataError(f"task {task!r} is not on the hub (its Task has no hub_config); use source='xtreme'")
    if lang in HUB_MISSING.get(task, ()):
        raise DataError(f"{HUB_DATASET} has no {task} data for {lang!r} (an XTREME-R addition); use "
                        f"source='xtreme' with data from google-research/xtreme's download_data.sh")
    if "{ud_name}" in spec.hub_config and lang not in HUB_UD_NAMES:
        raise DataError(f"{HUB_DATASET} has no {spec.hub_config.split('.')[0]} config for {lang!r}; languages with "
                        f"one: {', '.join(HUB_UD_NAMES)}")
    return spec.hub_config.format(lang=lang, ud_name=HUB_UD_NAMES.get(lang))


def load_hub_split(task: str, lang: str, file_split: str) -> Dataset:
    """One split as stored on the hub (file_split: train, dev or test), in the kit's columns."""
    spec = get_task(task)
    if spec.hub_source_train and file_split == "train":
        return from_multinli(load_dataset(spec.hub_source_train, split="train"))
    dataset = load_dataset(HUB_DATASET, hub_config(task, lang), split=HUB_SPLITS[file_split])
    if spec.kind == "tagging":
        return from_hub_tagging(dataset, spec.hub_tag_column, lang)
    if spec.kind == "classification":
        return from_hub_xnli(dataset, lang)
    return from_hub_tydiqa(dataset, lang)


def from_hub_tagging(dataset: Dataset, tag_column: str, lang: str) -> Dataset:
    """PAN-X (`ner_tags`) or udpos (`pos_tags`): ClassLabel ids to label names."""
    names = dataset.features[tag_column].feature.names
    return dataset.map(
        lambda batch: {"tokens": batch["tokens"], "tags": [[names[i] for i in ids] for ids in batch[tag_column]],
                       "lang": [lang] * len(batch["tokens"])},
        batched=True, remove_columns=dataset.column_names, features=FEATURES["tagging"])


def from_hub_xnli(dataset: Dataset, lang: str) -> Dataset:
    """The hub's XNLI config holds all languages in one table (language, sentence1, sentence2, gold_label)."""
    dataset = dataset.filter(lambda languages: [code == lang for code in languages], input_columns="language",
                             batched=True)
    if len(dataset) == 0:
        raise DataError(f"{HUB_DATASET} XNLI has no rows for language {lang!r}")
    return dataset.map(
        lambda batch: {"premise": batch["sentence1"], "hypothesis": batch["sentence2"], "label": batch["gold_label"],
                       "lang": batch["language"]},
        batched=True, remove_columns=dataset.column_names, features=FEATURES["classification"])


def from_multinli(dataset: Dataset) -> Dataset:
    """MultiNLI train (ClassLabel entailment/neutral/contradiction, -1 for no gold label) as English XNLI."""
    names = dataset.features["label"].names
    dataset = dataset.filter(lambda labels: [label >= 0 for label in labels], input_columns="label", batched=True)
    return dataset.map(
        lambda batch: {"premise": batch["premise"], "hypothesis": batch["hypothesis"],
                       "label": [names[i] for i in batch["label"]], "lang": ["en"] * len(batch["label"])},
        batched=True, remove_columns=dataset.column_names, features=FEATURES["classification"])


def from_hub_tydiqa(dataset: Dataset, lang: str) -> Dataset:
    """The hub's tydiqa config mixes languages; the language is the id's prefix ("arabic-...")."""
    prefix = {code: name for name, code in TYDIQA_ID_PREFIXES.items()}.get(lang)
    if prefix is None:
        raise DataError(f"TyDiQA has no language {lang!r}; languages: {', '.join(TYDIQA_ID_PREFIXES.values())}")
    dataset = dataset.filter(lambda ids: [i.split("-", 1)[0] == prefix for i in ids], input_columns="id",
                             batched=True)
    return dataset.map(
        lambda batch: {"lang": [lang] * len(batch["id"]),
                       "answers": [{"text": list(a["text"]), "answer_start": [int(s) for s in a["answer_start"]]}
                                   for a in batch["answers"]]},
        batched=True, remove_columns=["title"], features=FEATURES["qa"])
