"""Models: loading any `AutoModel` checkpoint with the task's head, and a tiny XLM-R built the real way.

The tiny model stands in for xlm-roberta-large where the hub cannot be reached: its tokenizer is a SentencePiece
Unigram model trained with the `tokenizers` library on the offline benchmark, its weights a randomly initialised
small `XLMRobertaForMaskedLM` (the class the real checkpoints are saved as), and both are written with
`save_pretrained`, so `AutoTokenizer.from_pretrained(out_dir)` and `AutoModelFor*.from_pretrained(out_dir)` load
it exactly as they load the real model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PreTrainedModel,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaTokenizer,
)
from transformers.utils import logging as hf_logging

from fslib.data import load_split, texts
from fslib.data.errors import DataError
from fslib.languages import MINI_LANGS
from fslib.offline_encoder import build_offline_encoder  # noqa: F401  (re-exported: fslib.models.build_offline_encoder)
from fslib.tasks import SPLITS, TASKS, Task, get_task

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
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return out_dir


def mini_corpus(data_dir: Path | str) -> Iterator[str]:
    """Every text of the offline benchmark under `data_dir` (all tasks, languages and splits)."""
    for task in TASKS:
        for lang in MINI_LANGS:
            for split in ("train", "test") if task == "tydiqa" else SPLITS:
                try:
                    yield from texts(load_split(task, lang, split, source="xtreme", data_dir=data_dir))
                except DataError:  # XNLI targets have no train split
                    continue


def load_model(name_or_path: str | Path, task: str | Task) -> PreTrainedModel:
    """A pre-trained checkpoint with the task's head: token classification (NER, POS), span start/end (TyDiQA),
    or a classifier on the first token (XNLI)."""
    spec = get_task(task) if isinstance(task, str) else task
    labels = {"id2label": dict(enumerate(spec.labels)), "label2id": {l: i for i, l in enumerate(spec.labels)},
              "num_labels": len(spec.labels)}
    auto, kwargs = {"qa": (AutoModelForQuestionAnswering, {}), "tagging": (AutoModelForTokenClassification, labels),
                    "classification": (AutoModelForSequenceClassification, labels)}[spec.kind]
    # Loading a pre-trained encoder under a new head always reports the same thing (new head, unused LM head),
    # once per ord-FS language: keep the logs for real problems.
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return auto.from_pretrained(name_or_path, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
