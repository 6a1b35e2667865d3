"""TyDiQA's context windows: `doc_stride` as the overlap of consecutive windows (a fast tokenizer's `stride`, the
paper preset) or, with `doc_stride_is_step`, as how far each window moves on (XTREME's SQuAD processor, the authors'
preset), checked on the token ids of a real tokenizer's windows."""

from datasets import Dataset

from fslib.engine.features import build_features

CONTEXT = " ".join(f"word{i} is followed by another sentence number {i}." for i in range(40))


def context_windows(tokenizer, question: str, step: bool) -> list[list[int]]:
    examples = Dataset.from_dict({"id": ["x"], "question": [question], "context": [CONTEXT], "lang": ["en"],
                                  "answers": [{"text": ["word3"], "answer_start": [CONTEXT.index("word3")]}]})
    features = build_features(examples, "tydiqa", tokenizer, max_length=64, doc_stride=16, doc_stride_is_step=step)
    return [[token for token, offset in zip(ids, offsets) if offset != [-1, -1]]
            for ids, offsets in zip(features["input_ids"], features["offset_mapping"])]


def test_doc_stride_is_the_overlap_by_default(tokenizer):
    windows = context_windows(tokenizer, "which word?", step=False)
    assert len(windows) > 3
    for first, second in zip(windows, windows[1:]):
        assert second[:16] == first[-16:]  # consecutive windows share 16 context tokens


def test_with_doc_stride_is_step_each_window_moves_on_by_it(tokenizer):
    for question in ("which word?", "which word comes right after the sentence with the number three in it?"):
        windows = context_windows(tokenizer, question, step=True)
        assert len(windows) > 5
        for first, second in zip(windows, windows[1:-1]):
            assert second[:len(first) - 16] == first[16:]  # the next window starts 16 tokens further on
        question_tokens = len(tokenizer(question, add_special_tokens=False)["input_ids"])
        assert len(windows[0]) == 64 - question_tokens - tokenizer.num_special_tokens_to_add(pair=True)


# ---- tagging inputs: the kit's, or XTREME's utils_tag.py (xtreme_tagging_inputs) -----------------------------
def tagging_features(tokenizer, tokens, xtreme: bool, max_length: int = 128):
    examples = Dataset.from_dict({"tokens": [tokens], "tags": [["NOUN"] * len(tokens)], "lang": ["en"]})
    return build_features(examples, "pos", tokenizer, max_length=max_length, xtreme_inputs=xtreme)


def test_xtreme_tagging_inputs_feed_unk_end_in_two_separators_and_split_at_max_length_minus_3(tokenizer):
    empty = "\u3000"  # an ideographic space as a word: normalised away, no sub-word piece left
    assert tokenizer(empty, add_special_tokens=False)["input_ids"] == []
    kit, xtreme = (tagging_features(tokenizer, ["a", empty, "b"], flag)[0] for flag in (False, True))
    sep, unk = tokenizer.sep_token_id, tokenizer.unk_token_id
    assert kit["input_ids"][-1] == sep and kit["input_ids"][-2] != sep and unk not in kit["input_ids"]
    assert 1 not in kit["word_ids"]  # the empty word is not in the input: it is scored as the first label
    assert xtreme["input_ids"][-2:] == [sep, sep] and xtreme["labels"][-2:] == [-100, -100]
    assert xtreme["input_ids"][xtreme["word_ids"].index(1)] == unk  # fed as <unk>, with its label: predicted
    words = [f"w{i}" for i in range(40)]  # one piece or more each; split into segments at word boundaries
    for flag, room in ((False, 14), (True, 13)):
        segments = tagging_features(tokenizer, words, flag, max_length=16)
        assert all(len(ids) <= 16 for ids in segments["input_ids"])
        pieces = [sum(1 for word in word_ids if word >= 0) for word_ids in segments["word_ids"]]
        lengths = [len(ids) - (3 if flag else 2) for ids in segments["input_ids"]]
        assert max(lengths) <= room and sum(pieces) == 40
