"""The task notebooks' views on hand-made predictions, with the numbers worked out by hand."""

import math

import pytest

from fslib.analysis.task_views import (
    answer_scores,
    answers,
    confusion_by_language,
    entity_f1,
    mark_errors,
    marked_sentences,
    tag_confusion,
    tag_scores,
    top_confusions,
)

NER = [
    # qa: PER right, LOC taken for ORG
    {"lang": "qa", "tokens": ["Ana", "lives", "in", "Paris"], "gold": ["B-PER", "O", "O", "B-LOC"],
     "pred": ["B-PER", "O", "O", "B-ORG"]},
    {"lang": "qa", "tokens": ["Bob", "Smith", "runs"], "gold": ["B-PER", "I-PER", "O"],
     "pred": ["B-PER", "I-PER", "O"]},
    {"lang": "en", "tokens": ["Acme", "Corp", "sells"], "gold": ["B-ORG", "I-ORG", "O"], "pred": ["B-ORG", "O", "O"]},
]


def test_entity_f1_per_type_and_language():
    table = entity_f1(NER)
    # qa: PER 2/2 predicted and found; LOC found 0 of 1; ORG 0 right of 1 predicted; micro: 2 right of 3 and 3
    assert table.loc["qa", "PER"] == 100.0 and table.loc["qa", "LOC"] == 0.0 and table.loc["qa", "ORG"] == 0.0
    assert table.loc["qa", "all"] == pytest.approx(66.67)
    # en: "Acme" alone is a different chunk from "Acme Corp": no entity right
    assert table.loc["en", "all"] == 0.0 and math.isnan(table.loc["en", "PER"])
    assert list(table.columns) == ["LOC", "ORG", "PER", "all"]


def test_marked_sentences_put_errors_first_and_mark_them():
    assert mark_errors(["Ana", "in", "Paris"], ["B-PER", "O", "B-LOC"], ["B-PER", "O", "B-ORG"]) == \
        "Ana/B-PER in [Paris: B-LOC → B-ORG]"
    table = marked_sentences(NER, n=1)
    assert list(table.lang) == ["qa", "en"] and list(table.errors) == [1, 1]
    assert table.sentence[1] == "Acme/B-ORG [Corp: I-ORG → O] sells"
    assert len(marked_sentences(NER, n=5, langs=["qa"])) == 2


POS = [
    {"lang": "qa", "tokens": ["a", "b", "c", "d"], "gold": ["NOUN", "VERB", "NOUN", "DET"],
     "pred": ["NOUN", "NOUN", "NOUN", "DET"]},
    {"lang": "qb", "tokens": ["e", "f"], "gold": ["VERB", "NOUN"], "pred": ["VERB", "VERB"]},
]


def test_tag_scores_count_tokens():
    table = tag_scores(POS)
    # NOUN: gold 3, predicted 3, right 2; VERB: gold 2, predicted 2, right 1; DET: 1 of 1
    assert table.loc["NOUN"].tolist() == pytest.approx([66.67, 66.67, 66.67, 3], abs=0.01)
    assert table.loc["VERB"].tolist() == pytest.approx([50.0, 50.0, 50.0, 2])
    assert table.loc["DET", "f1"] == 100.0
    assert list(table.index[:2]) == ["NOUN", "VERB"]  # most frequent first


def test_tag_confusion_and_top_confusions():
    counts = tag_confusion(POS)
    assert counts.loc["VERB", "NOUN"] == 1 and counts.loc["NOUN", "VERB"] == 1 and counts.loc["NOUN", "NOUN"] == 2
    assert counts.to_numpy().sum() == 6
    shares = tag_confusion(POS, normalize=True)
    assert shares.loc["VERB"].tolist() == [0.0, 50.0, 50.0]  # DET, NOUN, VERB
    top = top_confusions(POS, n=5)
    assert set(zip(top.gold, top.predicted)) == {("VERB", "NOUN"), ("NOUN", "VERB")}
    assert top.set_index("gold").loc["NOUN", "share of gold"] == pytest.approx(33.3)


QA = [
    {"lang": "qa", "id": "1", "question": "Who founded it?", "gold": ["Ana Lopez"], "pred": "Ana"},
    {"lang": "qa", "id": "2", "question": "who lives there", "gold": ["Bob"], "pred": "Bob"},
    {"lang": "en", "id": "3", "question": "When was it built?", "gold": ["in the year 1999", "1999"], "pred": "1999"},
    {"lang": "en", "id": "4", "question": "Where is it?", "gold": ["Paris"], "pred": "Rome"},
]


def test_answers_show_the_wrong_ones_first():
    table = answers(QA, n=1)
    assert table.to_dict("records") == [
        {"lang": "qa", "question": "Who founded it?", "predicted": "Ana", "gold": "Ana Lopez", "f1": 66.7, "em": 0.0},
        {"lang": "en", "question": "Where is it?", "predicted": "Rome", "gold": "Paris", "f1": 0.0, "em": 0.0}]


def test_answer_scores_per_question_word_and_answer_length():
    words = answer_scores(QA)
    assert words.loc["who"].tolist() == pytest.approx([2, (66.67 + 100) / 2, 50.0], abs=0.01)
    assert words.loc["when"].tolist() == [1, 100.0, 100.0]  # the best over the gold answers
    assert answer_scores(QA, top=1).index.tolist() == ["other", "who"]
    lengths = answer_scores(QA, by="answer length")
    # by the first gold answer: "Ana Lopez" 2 words, "Bob" and "Paris" 1, "in the year 1999" 4
    assert lengths.index.tolist() == ["1 word", "2 words", "3-4 words"]
    assert lengths.loc["1 word"].tolist() == [2, 50.0, 50.0]
    with pytest.raises(ValueError, match="question word"):
        answer_scores(QA, by="length")


def test_confusion_by_language():
    predictions = [{"lang": "qa", "gold": "entailment", "pred": "entailment"},
                   {"lang": "qa", "gold": "neutral", "pred": "entailment"},
                   {"lang": "qa", "gold": "contradiction", "pred": "contradiction"},
                   {"lang": "qb", "gold": "neutral", "pred": "neutral"}]
    labels = ("entailment", "neutral", "contradiction")
    table = confusion_by_language(predictions, labels)
    assert table.loc[("qa", "neutral"), "entailment"] == 1 and table.loc[("qa", "neutral"), "neutral"] == 0
    assert table.loc[("qa", "entailment"), "accuracy"] == pytest.approx(66.67)
    assert table.loc["qb"][list(labels)].to_numpy().sum() == 1
    assert table.loc[("qb", "neutral"), "accuracy"] == 100.0
