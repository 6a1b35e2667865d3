"""Metrics against values computed by hand."""

import pytest

from fslib.engine.metrics import accuracy, squad_f1_em, tagging_f1


def test_ner_entity_f1():
    # gold entities: PER(0-1), LOC(3); predicted: PER(0-1) -> precision 1, recall 1/2, F1 2/3
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "O"]]
    assert tagging_f1(gold, pred) == pytest.approx(200 / 3)


def test_ner_partial_entity_is_wrong():
    # predicting only the first token of a two-token entity finds no correct entity
    assert tagging_f1([["B-ORG", "I-ORG"]], [["B-ORG", "O"]]) == 0.0


def test_pos_f1_reads_runs_of_a_tag_as_one_chunk():
    # gold chunks: DET(0), NOUN(1-2), VERB(3); predicted: DET(0), NOUN(1), VERB(2-3): 1 of 3 correct both ways
    gold = [["DET", "NOUN", "NOUN", "VERB"]]
    pred = [["DET", "NOUN", "VERB", "VERB"]]
    assert tagging_f1(gold, pred) == pytest.approx(100 / 3)
    assert accuracy(gold[0], pred[0]) == 75.0  # token accuracy differs where tags repeat


def test_tagging_lengths_must_match():
    with pytest.raises(ValueError, match="same number of sentences and tokens"):
        tagging_f1([["O", "O"]], [["O"]])


def test_squad_f1_and_exact_match():
    predictions = ["the Eiffel Tower!", "«Paris»", "Sibelius", "Jean Sibelius Helsinki", ""]
    references = [["Eiffel Tower"], ["Paris"], ["Jean Sibelius", "Sibelius"], ["Jean Sibelius"], ["Paris"]]
    # per example F1: 1 (articles and ASCII punctuation removed), 0 (« » are not ASCII punctuation: SQuAD v1.1
    # keeps them), 1 (best gold answer), 0.8 (P 2/3, R 1), 0 (empty prediction); EM: 1, 0, 1, 0, 0
    scores = squad_f1_em(predictions, references)
    assert scores["f1"] == pytest.approx(100 * 2.8 / 5)
    assert scores["exact_match"] == pytest.approx(40.0)


def test_squad_unicode_punctuation_inside_words():
    # 東京。 is one token after normalisation, so it shares nothing with 東京
    assert squad_f1_em(["東京。"], [["東京"]]) == {"f1": 0.0, "exact_match": 0.0}
    assert squad_f1_em(["東京"], [["東京"]]) == {"f1": 100.0, "exact_match": 100.0}


def test_accuracy():
    assert accuracy(["entailment", "neutral", "neutral"], ["entailment", "neutral", "contradiction"]) == \
        pytest.approx(200 / 3)
    with pytest.raises(ValueError):
        accuracy([], [])
