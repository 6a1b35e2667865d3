"""The offline mini benchmark: a small, learnable, multilingual version of the four tasks, generated locally.

`generate(data_dir, seed)` writes NER, POS, TyDiQA-GoldP and XNLI data for English and six synthetic languages
(fslib.core.languages.MINI_LANGUAGES: two word orders crossed with three scripts, see fslib.prepare.mini.lexicon) into
`data_dir`, in the layout that google-research/xtreme's download_data.sh writes (data_dir plays its download/
folder), so the same loader serves the demo, the tests and real data:

    panx/{train,dev,test}-{lang}.tsv                                  NER, token<TAB>BIO label
    udpos/{train,dev,test}-{lang}.tsv                                 POS, token<TAB>UPOS
    xnli/{train,dev,test}-{lang}.tsv                                  premise<TAB>hypothesis<TAB>label (train: en only)
    tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.{lang}.train.json     SQuAD v1.1
    tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json         SQuAD v1.1 (the test set of the protocol)
    MINI_MANIFEST.json                                                seed, languages, example counts

Unlike XTREME's script, which strips the labels of test files, the mini benchmark KEEPS the labels of the test
files (and the answers of the TyDiQA dev files), like the labelled files researchers use.

Sizes: English 2,000 train / 300 dev / 300 test examples per task; each synthetic language 100 train (none for
XNLI, whose shots come from dev) / 200 dev / 200 test. TyDiQA has train and the dev file (counted as "test").
A quarter of every name list never occurs in a train split, so dev/test contain unseen entity names.

The same seed gives byte-identical files; every (task, language, split) has its own generator, seeded from a
hash of (seed, task, language, split), never from Python's salted `hash()`.
"""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

from fslib.core.languages import MINI_LANGS
from fslib.prepare.mini.tagging import tagged_sentences, write_tagging
from fslib.prepare.mini.tydiqa import tydiqa_documents, write_tydiqa
from fslib.prepare.mini.xnli import write_xnli, xnli_pairs

__all__ = ["generate", "MANIFEST", "sizes"]

MANIFEST = "MINI_MANIFEST.json"
MINI_TASKS = ("ner", "pos", "tydiqa", "xnli")  # the kit's four; a task registered later has no generator here
SOURCE_SIZES = {"train": 2000, "dev": 300, "test": 300}
TARGET_SIZES = {"train": 100, "dev": 200, "test": 200}


def sizes(task: str, lang: str) -> dict[str, int]:
    """The number of examples of each split of `task` in `lang` (splits as in the manifest)."""
    table = dict(SOURCE_SIZES if lang == "en" else TARGET_SIZES)
    if task == "xnli" and lang != "en":
        del table["train"]  # XNLI has no target training data
    if task == "tydiqa":
        del table["dev"]  # only the train file and the dev file, which is the test set
    return table


def _rng(seed: int, task: str, lang: str, split: str) -> random.Random:
    return random.Random(zlib.crc32(f"fslib.mini/{seed}/{task}/{lang}/{split}".encode()))


def generate(data_dir: Path | str, seed: int = 0) -> Path:
    """Write the mini benchmark into `data_dir` (created if needed; files of the same names are overwritten)
    and return its path."""
    root = Path(data_dir)
    for folder in ("panx", "udpos", "xnli", "tydiqa/tydiqa-goldp-v1.1-train", "tydiqa/tydiqa-goldp-v1.1-dev"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for task in MINI_TASKS:
        counts[task] = {}
        for lang in MINI_LANGS:
            counts[task][lang] = sizes(task, lang)
            for split, n in counts[task][lang].items():
                rng = _rng(seed, task, lang, split)
                unseen = split != "train"
                if task in ("ner", "pos"):
                    folder = "panx" if task == "ner" else "udpos"
                    write_tagging(root / folder / f"{split}-{lang}.tsv", tagged_sentences(task, lang, n, rng, unseen))
                elif task == "xnli":
                    write_xnli(root / "xnli" / f"{split}-{lang}.tsv", xnli_pairs(lang, n, rng, unseen))
                elif split == "train":
                    path = root / "tydiqa/tydiqa-goldp-v1.1-train" / f"tydiqa.goldp.{lang}.train.json"
                    write_tydiqa(path, tydiqa_documents(lang, n, rng, unseen, dev=False))
                else:
                    path = root / "tydiqa/tydiqa-goldp-v1.1-dev" / f"tydiqa.goldp.{lang}.dev.json"
                    write_tydiqa(path, tydiqa_documents(lang, n, rng, unseen, dev=True))
    manifest = {"seed": seed, "languages": list(MINI_LANGS), "counts": counts}
    with open(root / MANIFEST, "w", encoding="utf-8", newline="\n") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    return root
