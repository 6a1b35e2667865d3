"""The tiny model of the offline benchmark: an XLM-R built the real way, and the preparation of the demo.

The tiny model stands in for xlm-roberta-large where the hub cannot be reached: its tokenizer is a SentencePiece
Unigram model trained with the `tokenizers` library on the offline benchmark, its weights a randomly initialised
small `XLMRobertaForMaskedLM` (the class the real checkpoints are saved as), and both are written with
`save_pretrained`, so `AutoTokenizer.from_pretrained(out_dir)` and `AutoModelFor*.from_pretrained(out_dir)` load
it exactly as they load the real model (fslib.engine.models.load_model).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM, XLMRobertaTokenizer

from fslib.core.files import save_pretrained
from fslib.core.languages import MINI_LANGS
from fslib.core.tasks import SPLITS
from fslib.data import load_split, texts
from fslib.formats.errors import DataError
from fslib.prepare.mini import MANIFEST, MINI_TASKS, generate

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0-3; <mask> is id 4 here
TINY_CONFIG = dict(  # small enough to train in seconds on a CPU
    hidden_size=128,  # xlm-roberta-large: 1024
    num_hidden_layers=2,  # large: 24
    num_attention_heads=4,  # large: 16
    intermediate_size=256,  # large: 4096
    max_position_embeddings=514,  # as XLM-R: 512 positions after the padding offset of 2
)


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 4000) -> XLMRobertaTokenizer:
    """An XLM-R tokenizer (SentencePiece Unigram, metaspace pre-tokenisation, XLM-R's special tokens) trained on
    `corpus`."""
    unigram = Tokenizer(models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()])
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="<unk>",
                                      show_progress=False)
    unigram.train_from_iterator(corpus, trainer)
    vocab = [(piece, score) for piece, score in json.loads(unigram.to_str())["model"]["vocab"]]
    return XLMRobertaTokenizer(vocab=vocab)


def build_tiny_model(out_dir: Path | str, corpus: Iterable[str], *, seed: int = 0, vocab_size: int = 4000,
                     **config: int) -> Path:
    """Train a tokenizer on `corpus`, initialise a small XLM-R (TINY_CONFIG, overridable) and save both to
    `out_dir`; returns `out_dir`."""
    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(corpus, vocab_size)
    torch.manual_seed(seed)
    model = XLMRobertaForMaskedLM(XLMRobertaConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, type_vocab_size=1, **{**TINY_CONFIG, **config}))
    save_pretrained(out_dir, tokenizer, model)  # the weights last: prepare_offline looks for them
    return out_dir


def mini_corpus(data_dir: Path | str) -> Iterator[str]:
    """Every text of the offline benchmark under `data_dir` (all tasks, languages and splits)."""
    for task in MINI_TASKS:
        for lang in MINI_LANGS:
            for split in ("train", "test") if task == "tydiqa" else SPLITS:
                try:
                    yield from texts(load_split(task, lang, split, source="xtreme", data_dir=data_dir))
                except DataError:  # XNLI targets have no train split
                    continue


def prepare_offline(data_dir: Path, model_dir: Path) -> None:
    """The offline benchmark at `data_dir` and the tiny model at `model_dir`, made where missing (parameter files
    with `prepare: offline`)."""
    if not (data_dir / MANIFEST).exists():
        generate(data_dir, seed=0)
    if not (model_dir / "model.safetensors").exists():  # written last by save_pretrained
        build_tiny_model(model_dir, mini_corpus(data_dir))
