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
