"""Features on the offline benchmark with the tiny model's tokenizer: first-sub-word labels, long sentences in
segments, TyDiQA windows that map back to the answer text, XNLI pairs, batches, and the cache."""

import numpy as np
import pytest
import torch
from datasets import Dataset

import fslib.engine.features as features_module
from fslib.core.tasks import NER_LABELS, get_task
from fslib.data import load_split
from fslib.engine.features import (
    IGNORE,
    Collator,
    build_features,
    qa_predictions,
    tagging_predictions,
)
from fslib.engine.metrics import squad_f1_em


def test_labels_sit_on_the_first_sub_word_of_each_word(mini_dir, tokenizer):
    examples = load_split("ner", "qc", "dev", source="xtreme", data_dir=mini_dir)
    features = build_features(examples, "ner", tokenizer)
    for feature in features.select(range(50)):
        example = examples[feature["example_index"]]
        words = [w for w in feature["word_ids"] if w >= 0]
        assert words == sorted(words) and len(words) == len(set(words))
        for position, (word, label) in enumerate(zip(feature["word_ids"], feature["labels"])):
            if word < 0:
                assert label == IGNORE
            else:
                assert NER_LABELS[label] == example["tags"][word]
                first_piece = tokenizer.convert_ids_to_tokens(feature["input_ids"][position])
                assert first_piece.startswith("▁")  # a word's first sub-word carries the metaspace


def test_long_sentence_is_split_into_segments_not_truncated(tokenizer):
    words = [f"word{i % 37}" for i in range(300)]
    tags = ["B-PER" if i % 5 == 0 else "O" for i in range(300)]
    examples = Dataset.from_dict({"tokens": [words, words[:3]], "tags": [tags, tags[:3]], "lang": ["en", "en"]})
    features = build_features(examples, "ner", tokenizer, max_length=32)
    assert len(features) > 10  # the long sentence became many segments, the short one a single feature
    assert max(len(ids) for ids in features["input_ids"]) <= 32
    assert all(ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
               for ids in features["input_ids"])
    # predicting the gold label at every labelled position rebuilds every word's tag exactly
    gold_ids = [[max(label, 0) for label in labels] for labels in features["labels"]]
    predictions = tagging_predictions(features, gold_ids, examples, NER_LABELS, fallback="O")
    assert predictions == [tags, tags[:3]]


def test_mini_sentences_round_trip_through_features(mini_dir, tokenizer):
    for task in ("ner", "pos"):
        examples = load_split(task, "qe", "test", source="xtreme", data_dir=mini_dir)
        features = build_features(examples, task, tokenizer)
        gold_ids = [[max(label, 0) for label in labels] for labels in features["labels"]]
        labels = get_task(task).labels
        assert tagging_predictions(features, gold_ids, examples, labels, fallback=labels[0]) == examples["tags"]


def test_tydiqa_windows_map_back_to_the_answer_text(mini_dir, tokenizer):
    examples = load_split("tydiqa", "qd", "test", source="xtreme", data_dir=mini_dir)
    features = build_features(examples, "tydiqa", tokenizer)
    assert len(features) > len(examples)  # long contexts became several windows
    assert max(len(ids) for ids in features["input_ids"]) <= 384
    contexts, answers = examples["context"], examples["answers"]
    start_logits, end_logits = [], []
    for feature in features:
        start, end, offsets = feature["start_positions"], feature["end_positions"], feature["offset_mapping"]
        if start > 0:
            text = contexts[feature["example_index"]][offsets[start][0]:offsets[end][1]]
            # token granularity: a sub-word may run past the answer into punctuation (Лантернс" for Лантернс)
            assert squad_f1_em([text], [answers[feature["example_index"]]["text"]])["exact_match"] == 100
        logits = np.full((2, len(offsets)), -10.0)
        logits[0, start], logits[1, end] = 10.0, 10.0
        start_logits.append(logits[0])
        end_logits.append(logits[1])
    predicted = qa_predictions(features, start_logits, end_logits, examples)
    assert squad_f1_em(predicted, [a["text"] for a in answers])["exact_match"] == 100


def test_xnli_pairs(mini_dir, tokenizer):
    examples = load_split("xnli", "qa", "test", source="xtreme", data_dir=mini_dir)
    features = build_features(examples, "xnli", tokenizer)
    assert len(features) == len(examples)
    labels = ("contradiction", "entailment", "neutral")
    assert features["labels"] == [labels.index(label) for label in examples["label"]]
    ids = features[0]["input_ids"]
    sep = tokenizer.sep_token_id
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == sep and [sep, sep] in [ids[i:i + 2] for i in range(len(ids))]


@pytest.mark.parametrize("task", ["ner", "pos", "tydiqa", "xnli"])
def test_batches(mini_dir, tokenizer, task):
    split = "train"
    examples = load_split(task, "en", split, source="xtreme", data_dir=mini_dir)
    features = build_features(examples.select(range(8)), task, tokenizer)
    batch = Collator(task, tokenizer)([features[i] for i in range(min(8, len(features)))])
    size, length = batch["input_ids"].shape
    assert batch["attention_mask"].shape == (size, length)
    assert batch["langs"] == ["en"] * size
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id).all()
    if task in ("ner", "pos"):
        assert batch["labels"].shape == (size, length)
        assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE).all()
    elif task == "tydiqa":
        assert batch["start_positions"].dtype == torch.long and batch["start_positions"].shape == (size,)
    else:
        assert batch["labels"].shape == (size,)


def test_second_build_reads_the_cache(mini_dir, tokenizer, monkeypatch):
    examples = load_split("ner", "qb", "test", source="xtreme", data_dir=mini_dir)
    first = build_features(examples, "ner", tokenizer)
    assert first.cache_files  # written to datasets' cache, keyed by an explicit fingerprint

    def must_not_run(*args, **kwargs):
        raise AssertionError("tokenised again")

    monkeypatch.setattr(features_module, "tokenize_and_align_labels", must_not_run)
    again = build_features(load_split("ner", "qb", "test", source="xtreme", data_dir=mini_dir), "ner", tokenizer)
    assert again["input_ids"] == first["input_ids"]
