"""The hub source's conversion, on in-memory datasets built with google/xtreme's (and MultiNLI's) exact schema."""

import pytest
from datasets import ClassLabel, Dataset, Features, List, Value

from fslib.core.tasks import NER_LABELS, UPOS_LABELS
from fslib.data.hub import (
    from_hub_tagging,
    from_hub_tydiqa,
    from_hub_xnli,
    from_multinli,
    hub_config,
)
from fslib.formats.errors import DataError


def test_panx_classlabel_ids_become_label_names():
    hub = Dataset.from_dict(
        {"tokens": [["Angela", "Merkel", "spricht"]], "ner_tags": [[1, 2, 0]], "langs": [["de", "de", "de"]]},
        features=Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=list(NER_LABELS))),
                           "langs": List(Value("string"))}))
    assert from_hub_tagging(hub, "ner_tags", "de").to_list() == [
        {"tokens": ["Angela", "Merkel", "spricht"], "tags": ["B-PER", "I-PER", "O"], "lang": "de"}]


def test_udpos_classlabel_ids_become_upos_names():
    hub = Dataset.from_dict(
        {"tokens": [["Le", "chat"]], "pos_tags": [[5, 7]]},
        features=Features({"tokens": List(Value("string")), "pos_tags": List(ClassLabel(names=list(UPOS_LABELS)))}))
    assert from_hub_tagging(hub, "pos_tags", "fr")[0]["tags"] == ["DET", "NOUN"]


def test_xnli_is_filtered_by_language_and_renamed():
    hub = Dataset.from_dict({"language": ["de", "fr", "fr"], "sentence1": ["a", "b", "c"],
                             "sentence2": ["x", "y", "z"], "gold_label": ["neutral", "entailment", "contradiction"]})
    assert from_hub_xnli(hub, "fr").to_list() == [
        {"premise": "b", "hypothesis": "y", "label": "entailment", "lang": "fr"},
        {"premise": "c", "hypothesis": "z", "label": "contradiction", "lang": "fr"}]
    with pytest.raises(DataError, match="no rows for language 'sw'"):
        from_hub_xnli(hub, "sw")


def test_multinli_drops_unlabelled_pairs():
    hub = Dataset.from_dict(
        {"premise": ["p1", "p2", "p3"], "hypothesis": ["h1", "h2", "h3"], "label": [2, -1, 0]},
        features=Features({"premise": Value("string"), "hypothesis": Value("string"),
                           "label": ClassLabel(names=["entailment", "neutral", "contradiction"])}))
    assert from_multinli(hub).to_list() == [
        {"premise": "p1", "hypothesis": "h1", "label": "contradiction", "lang": "en"},
        {"premise": "p3", "hypothesis": "h3", "label": "entailment", "lang": "en"}]


def test_tydiqa_language_comes_from_the_id_prefix():
    answers = Features({"text": List(Value("string")), "answer_start": List(Value("int32"))})
    hub = Dataset.from_dict(
        {"id": ["arabic-1-0", "finnish-2-0"], "title": ["t", "t"], "context": ["ق ب", "Helsinki on"],
         "question": ["?", "Mikä?"], "answers": [{"text": ["ب"], "answer_start": [2]},
                                                 {"text": ["Helsinki"], "answer_start": [0]}]},
        features=Features({"id": Value("string"), "title": Value("string"), "context": Value("string"),
                           "question": Value("string"), "answers": answers}))
    assert from_hub_tydiqa(hub, "fi").to_list() == [
        {"id": "finnish-2-0", "context": "Helsinki on", "question": "Mikä?",
         "answers": {"text": ["Helsinki"], "answer_start": [0]}, "lang": "fi"}]


def test_hub_configs_and_xtreme_r_additions():
    assert hub_config("ner", "de") == "PAN-X.de"
    assert hub_config("pos", "fr") == "udpos.French"
    assert hub_config("xnli", "sw") == "XNLI"
    for task, lang in [("ner", "pa"), ("pos", "wo"), ("ner", "qu")]:
        with pytest.raises(DataError, match="XTREME-R addition.*use source='xtreme'"):
            hub_config(task, lang)
