"""The whole data path on the offline benchmark: every split of every language of every task goes through
`load_split`, shots, features and batches, and the counts and labels are what the generator wrote."""

import json

import pytest

from fslib.core.languages import MINI_LANGS
from fslib.core.tasks import NER_LABELS, UPOS_LABELS, XNLI_LABELS, get_task
from fslib.data import load_shots, load_split
from fslib.engine.features import Collator, build_features
from fslib.formats.errors import DataError
from fslib.prepare.mini import MANIFEST

K, SEED = 5, 1


@pytest.fixture(scope="module")
def counts(mini_dir):
    return json.loads((mini_dir / MANIFEST).read_text())["counts"]


def load(mini_dir, task, lang, split, **kwargs):
    return load_split(task, lang, split, source="xtreme", data_dir=mini_dir, **kwargs)


@pytest.mark.parametrize("task, labels", [("ner", NER_LABELS), ("pos", UPOS_LABELS)])
def test_tagging_tasks(mini_dir, tokenizer, counts, task, labels):
    for lang in MINI_LANGS:
        for split in ("train", "dev", "test"):
            data = load(mini_dir, task, lang, split)
            assert len(data) == counts[task][lang][split], (lang, split)
            tags = {tag for sentence in data["tags"] for tag in sentence}
            assert tags <= set(labels)
            if lang == "en" and split == "train":
                assert tags == set(labels)  # every label of the task occurs
        check_shots_features_batch(mini_dir, tokenizer, task, lang, K)


def test_xnli(mini_dir, tokenizer, counts):
    for lang in MINI_LANGS:
        for split in ("dev", "test") if lang != "en" else ("train", "dev", "test"):
            data = load(mini_dir, "xnli", lang, split)
            assert len(data) == counts["xnli"][lang][split]
            assert set(data["label"]) == set(XNLI_LABELS)
        if lang != "en":
            with pytest.raises(DataError):
                load(mini_dir, "xnli", lang, "train")
            # the dev split without the 3K shots drawn from it
            assert len(load(mini_dir, "xnli", lang, "dev", k=K, seed=SEED)) == counts["xnli"][lang]["dev"] - 3 * K
            shots = check_shots_features_batch(mini_dir, tokenizer, "xnli", lang, K)
            assert len(shots) == 3 * K


def test_tydiqa(mini_dir, tokenizer, counts):
    train, dev = load(mini_dir, "tydiqa", "en", "train"), load(mini_dir, "tydiqa", "en", "dev")
    assert len(train) + len(dev) == counts["tydiqa"]["en"]["train"]  # English dev is held out of train
    assert not set(train["id"]) & set(dev["id"])
    assert len(load(mini_dir, "tydiqa", "en", "test")) == counts["tydiqa"]["en"]["test"]
    for lang in MINI_LANGS[1:]:
        assert len(load(mini_dir, "tydiqa", lang, "train")) == counts["tydiqa"][lang]["train"]
        assert len(load(mini_dir, "tydiqa", lang, "test")) == counts["tydiqa"][lang]["test"]
        dev = load(mini_dir, "tydiqa", lang, "dev", k=K, seed=SEED)
        shots = check_shots_features_batch(mini_dir, tokenizer, "tydiqa", lang, K)
        assert len(dev) == counts["tydiqa"][lang]["train"] - K
        assert not set(dev["id"]) & set(shots["id"])  # the target dev split is train without the shots


def check_shots_features_batch(mini_dir, tokenizer, task, lang, k):
    shots = load_shots(task, lang, k, SEED, source="xtreme", data_dir=mini_dir)
    assert shots.to_list() == load_shots(task, lang, k, SEED, source="xtreme", data_dir=mini_dir).to_list()
    features = build_features(shots, task, tokenizer)
    assert len(features) >= len(shots)
    batch = Collator(task, tokenizer)(features.to_list())
    assert batch["input_ids"].shape[0] == len(features)
    assert batch["input_ids"].shape[1] <= get_task(task).max_length
    return shots
