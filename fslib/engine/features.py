"""Model inputs for each task, built with `Dataset.map` under an explicit fingerprint so that datasets' cache
serves a second run without tokenising again.

Every feature keeps `lang` and `example_index` (the row it came from), so predictions map back to examples:
- tagging: `labels` on the first sub-word of each word (-100 elsewhere), as run_ner_no_trainer's
  `tokenize_and_align_labels`; sentences longer than `max_length` are split at word boundaries into several
  segments instead of being truncated (as XTREME's preprocessing does), and `word_ids` (-1 for positions that
  carry no label) say which word each labelled position belongs to.
- qa: run_qa's sliding windows (`doc_stride` overlap) with `start_positions`/`end_positions` (the <s> position
  when the answer is not in the window) and `offset_mapping` for the context tokens ([-1, -1] elsewhere).
- classification: premise/hypothesis pairs with an integer `labels`.
"""

from __future__ import annotations

import hashlib

import numpy as np
from datasets import Dataset
from transformers import (
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
)

from fslib.core.tasks import Task, get_task

FEATURES_VERSION = 2  # bump when the feature layout changes, to invalidate cached features
IGNORE = -100
MODEL_INPUTS = ("input_ids", "attention_mask", "labels", "start_positions", "end_positions")


def column(dataset: Dataset, name: str) -> list:
    """A whole column as a list, read at once: `dataset[name]` is a lazy column in datasets 4+, and iterating it
    formats one row at a time (about ten times slower; evaluation read each column so several times)."""
    return dataset[name][:]


def input_lengths(features: Dataset) -> list[int]:
    """Tokens per feature, from Arrow's list lengths (no ids are read into Python)."""
    import pyarrow.compute as pc

    return pc.list_value_length(features.with_format("arrow")["input_ids"]).to_pylist()


def tokenize_and_align_labels(batch: dict, indices: list[int], tokenizer: PreTrainedTokenizerBase,
                              label_to_id: dict[str, int], max_length: int, xtreme_inputs: bool = False) -> dict:
    """With `xtreme_inputs`, as XTREME's utils_tag.py builds XLM-R inputs: a word without pieces is fed as <unk>
    (and predicted), sentences end in </s></s> and segments hold max_length - 3 pieces; otherwise such a word is
    left out (it gets the fallback tag), one </s>, max_length - 2."""
    encoded = tokenizer(batch["tokens"], is_split_into_words=True, add_special_tokens=False)
    ends = [tokenizer.sep_token_id] * (2 if xtreme_inputs else 1)
    budget = max_length - 1 - len(ends)  # room for <s> and the separators
    out: dict[str, list] = {key: [] for key in ("input_ids", "labels", "word_ids", "example_index", "lang")}
    for row, (tags, index, lang) in enumerate(zip(batch["tags"], indices, batch["lang"])):
        pieces: list[list[int]] = [[] for _ in tags]
        for token_id, word in zip(encoded["input_ids"][row], encoded.word_ids(row)):
            pieces[word].append(token_id)
        if xtreme_inputs:
            pieces = [word_pieces or [tokenizer.unk_token_id] for word_pieces in pieces]
        segments, current, used = [], [], 0
        for word, word_pieces in enumerate(pieces):
            length = min(len(word_pieces), budget)
            if current and used + length > budget:
                segments.append(current)
                current, used = [], 0
            current.append(word)
            used += length
        segments.append(current)
        for segment in segments:
            ids, labels, word_ids = [tokenizer.cls_token_id], [IGNORE], [-1]
            for word in segment:
                word_pieces = pieces[word][:budget]
                if not word_pieces:  # nothing left of the word after normalisation: it gets the fallback tag
                    continue
                ids += word_pieces
                labels += [label_to_id[tags[word]]] + [IGNORE] * (len(word_pieces) - 1)
                word_ids += [word] + [-1] * (len(word_pieces) - 1)
            out["input_ids"].append(ids + ends)
            out["labels"].append(labels + [IGNORE] * len(ends))
            out["word_ids"].append(word_ids + [-1] * len(ends))
            out["example_index"].append(index)
            out["lang"].append(lang)
    out["attention_mask"] = [[1] * len(ids) for ids in out["input_ids"]]
    return out


def truncate_questions(questions: list[str], tokenizer: PreTrainedTokenizerBase, max_query_length: int) -> list[str]:
    """Each question cut after its first `max_query_length` sub-words (XTREME's run_squad does this to the
    question's tokens; cutting the text at the last kept token's end gives the same tokens)."""
    encoded = tokenizer(questions, add_special_tokens=False, truncation=True, max_length=max_query_length,
                        return_offsets_mapping=True)
    return [question[:offsets[-1][1]] if offsets else question
            for question, offsets in zip(questions, encoded["offset_mapping"])]


def window_overlaps(questions: list[str], tokenizer: PreTrainedTokenizerBase, max_length: int, doc_stride: int,
                    doc_stride_is_step: bool) -> dict[int, list[int]]:
    """The fast tokenizer's `stride` (the overlap of consecutive context windows) -> the positions of the examples
    that take it. `doc_stride` is the overlap itself, or with `doc_stride_is_step` how far each window moves on
    (XTREME's SQuAD processor: the overlap is the window, max_length minus the question and the special tokens,
    minus doc_stride, so it depends on the question's length)."""
    if not doc_stride_is_step:
        return {doc_stride: list(range(len(questions)))}
    special = tokenizer.num_special_tokens_to_add(pair=True)
    groups: dict[int, list[int]] = {}
    for position, ids in enumerate(tokenizer(questions, add_special_tokens=False)["input_ids"]):
        groups.setdefault(max(0, max_length - doc_stride - len(ids) - special), []).append(position)
    return groups


def prepare_qa_features(batch: dict, indices: list[int], tokenizer: PreTrainedTokenizerBase, max_length: int,
                        doc_stride: int, max_query_length: int | None = None, doc_stride_is_step: bool = False) -> dict:
    questions = [question.lstrip() for question in batch["question"]]
    if max_query_length:
        questions = truncate_questions(questions, tokenizer, max_query_length)
    features: dict[str, list] = {}
    starts, ends, offsets, samples = [], [], [], []
    for overlap, members in window_overlaps(questions, tokenizer, max_length, doc_stride, doc_stride_is_step).items():
        encoded = tokenizer([questions[i] for i in members], [batch["context"][i] for i in members],
                            truncation="only_second", max_length=max_length, stride=overlap,
                            return_overflowing_tokens=True, return_offsets_mapping=True)
        for feature, offset in enumerate(encoded["offset_mapping"]):
            sample = members[encoded["overflow_to_sample_mapping"][feature]]
            samples.append(sample)
            for name, values in encoded.items():
                if name not in ("offset_mapping", "overflow_to_sample_mapping"):
                    features.setdefault(name, []).append(values[feature])
            sequence_ids = encoded.sequence_ids(feature)
            in_context = [sid == 1 for sid in sequence_ids]
            offsets.append([list(span) if inside else [-1, -1] for span, inside in zip(offset, in_context)])
            answers = batch["answers"][sample]
            start_char = answers["answer_start"][0]
            end_char = start_char + len(answers["text"][0])
            context_positions = [i for i, inside in enumerate(in_context) if inside]
            if offset[context_positions[0]][0] > start_char or offset[context_positions[-1]][1] < end_char:
                starts.append(0)  # the answer is not inside this window: point at <s>
                ends.append(0)
                continue
            # first token ending after the answer's start, last token starting before its end (robust to XLM-R's
            # standalone "▁" pieces, whose offsets repeat the next character's)
            starts.append(next(i for i in context_positions if offset[i][1] > start_char))
            ends.append(max(i for i in context_positions if offset[i][0] < end_char))
    features["start_positions"], features["end_positions"], features["offset_mapping"] = starts, ends, offsets
    features["example_index"] = [indices[i] for i in samples]
    features["lang"] = [batch["lang"][i] for i in samples]
    return features


def tokenize_pairs(batch: dict, indices: list[int], tokenizer: PreTrainedTokenizerBase,
                   label_to_id: dict[str, int], max_length: int) -> dict:
    encoded = tokenizer(batch["premise"], batch["hypothesis"], truncation=True, max_length=max_length)
    encoded["labels"] = [label_to_id[label] for label in batch["label"]]
    encoded["example_index"] = indices
    encoded["lang"] = batch["lang"]
    return dict(encoded)


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of the tokenizer's full serialisation (vocabulary, normaliser, specials); computed once."""
    cached = getattr(tokenizer, "_fslib_fingerprint", None)
    if cached is None:
        cached = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:16]
        tokenizer._fslib_fingerprint = cached
    return cached


def build_features(dataset: Dataset, task: str | Task, tokenizer: PreTrainedTokenizerBase,
                   max_length: int | None = None, doc_stride: int | None = None,
                   max_query_length: int | None = None, doc_stride_is_step: bool = False,
                   xtreme_inputs: bool = False) -> Dataset:
    """Tokenise one split of one task (see the module docstring for the columns); cached by datasets."""
    spec = get_task(task) if isinstance(task, str) else task
    max_length = max_length or spec.max_length
    label_to_id = {label: i for i, label in enumerate(spec.labels)}
    if spec.kind == "tagging":
        function, kwargs = tokenize_and_align_labels, {"label_to_id": label_to_id, "max_length": max_length}
        if xtreme_inputs:  # only where set: the features cached before the option keep their key
            kwargs["xtreme_inputs"] = True
    elif spec.kind == "qa":
        function, kwargs = prepare_qa_features, {"max_length": max_length,
                                                  "doc_stride": doc_stride or spec.doc_stride,
                                                  "max_query_length": max_query_length}
        if doc_stride_is_step:  # only where set: the features cached before the option keep their key
            kwargs["doc_stride_is_step"] = True
    else:
        function, kwargs = tokenize_pairs, {"label_to_id": label_to_id, "max_length": max_length}
    key = "/".join(map(str, [dataset._fingerprint, spec.name, tokenizer_fingerprint(tokenizer),
                             sorted(kwargs.items()), FEATURES_VERSION]))
    return dataset.map(function, batched=True, with_indices=True, remove_columns=dataset.column_names,
                       fn_kwargs={"tokenizer": tokenizer, **kwargs},
                       new_fingerprint=hashlib.sha256(key.encode()).hexdigest()[:32],
                       desc=f"tokenising {spec.name} ({', '.join(sorted(set(dataset['lang'])))})")


class Collator:
    """Pads a list of features into a batch of model inputs; keeps the batch's languages (for error messages
    and per-language bookkeeping) under `langs`, outside the model inputs."""

    def __init__(self, task: str | Task, tokenizer: PreTrainedTokenizerBase):
        kind = (get_task(task) if isinstance(task, str) else task).kind
        self.pad = (DataCollatorForTokenClassification(tokenizer) if kind == "tagging"
                    else DataCollatorWithPadding(tokenizer))

    def __call__(self, features: list[dict]) -> dict:
        batch = self.pad([{key: f[key] for key in MODEL_INPUTS if key in f} for f in features])
        batch["langs"] = [f["lang"] for f in features]
        return batch


def tagging_predictions(features: Dataset, predicted_ids: list[list[int]], examples: Dataset,
                        labels: tuple[str, ...], fallback: str) -> list[list[str]]:
    """Word-level tag sequences of `examples` from per-position predictions of their features (segments of one
    sentence are stitched back together; a word that got no prediction gets `fallback`)."""
    predictions = [[fallback] * len(tokens) for tokens in column(examples, "tokens")]
    for example, word_ids, predicted in zip(column(features, "example_index"), column(features, "word_ids"),
                                            predicted_ids):
        for word, label_id in zip(word_ids, predicted):
            if word >= 0:
                predictions[example][word] = labels[label_id]
    return predictions


def qa_predictions(features: Dataset, start_logits: list[np.ndarray], end_logits: list[np.ndarray],
                   examples: Dataset, n_best: int = 20, max_answer_length: int = 30) -> list[str]:
    """The best answer text of each example over all its windows (run_qa's postprocessing): the highest
    start+end logit over valid spans inside the context."""
    best: list[tuple[float, str]] = [(-np.inf, "")] * len(examples)
    contexts = column(examples, "context")
    for example, offsets, starts, ends in zip(column(features, "example_index"), column(features, "offset_mapping"),
                                              start_logits, end_logits):
        starts, ends = np.asarray(starts)[:len(offsets)], np.asarray(ends)[:len(offsets)]
        for start in np.argsort(starts)[::-1][:n_best]:
            for end in np.argsort(ends)[::-1][:n_best]:
                if offsets[start][0] < 0 or offsets[end][0] < 0 or end < start or end - start + 1 > max_answer_length:
                    continue
                score = float(starts[start] + ends[end])
                if score > best[example][0]:
                    best[example] = (score, contexts[example][offsets[start][0]:offsets[end][1]])
    return [text for _, text in best]
