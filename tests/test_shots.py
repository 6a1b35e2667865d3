"""Few-shot draws: deterministic, nested across K, N-way K-shot for XNLI, and clear errors."""

import pytest
from datasets import Dataset

from fslib.data import load_shots, sample_shots, shot_indices
from fslib.formats.errors import DataError


def tagging_pool(lang="de", n=50):
    return Dataset.from_dict({"tokens": [[f"w{i}"] for i in range(n)], "tags": [["O"]] * n, "lang": [lang] * n})


def xnli_pool(lang="fr", per_class=(10, 12, 8)):
    labels = [label for label, n in zip(("contradiction", "entailment", "neutral"), per_class) for _ in range(n)]
    n = len(labels)
    return Dataset.from_dict({"premise": [f"p{i}" for i in range(n)], "hypothesis": ["h"] * n, "label": labels,
                              "lang": [lang] * n})


def test_same_task_language_k_seed_give_the_same_shots():
    first = sample_shots(tagging_pool(), "ner", 5, seed=1)
    again = sample_shots(tagging_pool(), "ner", 5, seed=1)
    assert first.to_list() == again.to_list()
    assert len(first) == 5 and len({r["tokens"][0] for r in first}) == 5


def test_seed_and_language_change_the_draw_and_k_is_nested():
    assert shot_indices(tagging_pool(), "ner", 5, seed=1) != shot_indices(tagging_pool(), "ner", 5, seed=2)
    assert shot_indices(tagging_pool("de"), "ner", 5, 1) != shot_indices(tagging_pool("nl"), "ner", 5, 1)
    ten = shot_indices(tagging_pool(), "ner", 10, seed=3)
    assert shot_indices(tagging_pool(), "ner", 5, seed=3) == ten[:5]
    assert shot_indices(tagging_pool(), "ner", 1, seed=3) == ten[:1]


def test_xnli_is_n_way_k_shot():
    shots = sample_shots(xnli_pool(), "xnli", 5, seed=1)
    labels = shots["label"]
    assert len(shots) == 15
    assert {label: labels.count(label) for label in set(labels)} == {"contradiction": 5, "entailment": 5,
                                                                     "neutral": 5}


def test_too_few_examples_names_the_language():
    with pytest.raises(DataError, match=r"ner 'de' has 3 examples, fewer than k=5"):
        sample_shots(tagging_pool(n=3), "ner", 5, seed=1)
    with pytest.raises(DataError, match=r"xnli 'fr' has 8 examples of class 'neutral', fewer than k=10"):
        sample_shots(xnli_pool(), "xnli", 10, seed=1)


def test_shots_come_from_one_language():
    mixed = Dataset.from_dict({"tokens": [["a"], ["b"]], "tags": [["O"], ["O"]], "lang": ["de", "fr"]})
    with pytest.raises(ValueError, match="one language at a time"):
        sample_shots(mixed, "ner", 1, seed=1)


def test_language_without_train_split_is_named(xtreme_fixtures):
    with pytest.raises(DataError, match=r"no shots for pos 'th' \(XTREME-R has no UD training data for th, tl"):
        load_shots("pos", "th", 5, 1, source="xtreme", data_dir=xtreme_fixtures)


def test_xnli_dev_without_its_shots(xtreme_fixtures):
    shots = load_shots("xnli", "fr", 1, 1, source="xtreme", data_dir=xtreme_fixtures)
    assert sorted(shots["label"]) == ["contradiction", "entailment", "neutral"]
