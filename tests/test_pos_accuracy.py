"""POS token accuracy, the second metric row beside seqeval F1: computed by hand, recorded by every POS evaluation,
shown per language in the POS view, and selectable in the reports (`choose_metrics`)."""

import pandas as pd
import pytest
from datasets import Dataset

from fslib.analysis.tables import choose_metrics, main_table
from fslib.analysis.task_views import pos_scores
from fslib.core.tasks import get_task
from fslib.engine.evaluation import score
from fslib.engine.metrics import tagging_f1, token_accuracy


def test_token_accuracy_by_hand_and_where_seqeval_differs():
    gold = [["NOUN", "VERB", "SCONJ"], ["DET", "NOUN"]]
    pred = [["NOUN", "NOUN", "SCONJ"], ["DET", "ADJ"]]
    assert token_accuracy(gold, pred) == pytest.approx(60.0)  # 3 of 5 words
    # seqeval types a chunk by the tag minus its first letter: SCONJ and CCONJ are one type to it
    assert tagging_f1([["SCONJ"]], [["CCONJ"]]) == 100.0 and token_accuracy([["SCONJ"]], [["CCONJ"]]) == 0.0
    with pytest.raises(ValueError, match="same number"):
        token_accuracy([["NOUN"]], [["NOUN", "VERB"]])


def test_every_pos_evaluation_records_both_rows_and_ner_only_its_f1():
    examples = Dataset.from_dict({"tokens": [["a", "b"], ["c"]], "tags": [["NOUN", "VERB"], ["ADJ"]],
                                  "lang": ["de", "de"]})
    pos = score(get_task("pos"), examples, [["NOUN", "NOUN"], ["ADJ"]])
    assert set(pos) == {"f1", "token_accuracy"} and pos["token_accuracy"] == pytest.approx(200 / 3)
    ner = Dataset.from_dict({"tokens": [["a"]], "tags": [["B-PER"]], "lang": ["de"]})
    assert set(score(get_task("ner"), ner, [["B-PER"]])) == {"f1"}


def test_the_pos_view_gives_accuracy_per_language_and_over_all():
    predictions = [{"lang": "de", "gold": ["NOUN", "VERB"], "pred": ["NOUN", "NOUN"]},
                   {"lang": "fr", "gold": ["ADJ", "ADJ", "NOUN"], "pred": ["ADJ", "ADJ", "NOUN"]}]
    table = pos_scores(predictions)
    assert table["token_accuracy"].to_dict() == {"de": 50.0, "fr": 100.0, "all": 80.0}
    assert table["words"].to_dict() == {"de": 2, "fr": 3, "all": 5}


def rows(task, metric, value, seed):
    return {"task": task, "method": "ord-FS", "model": "m", "k": 5, "seed": seed, "lang": "de", "split": "test",
            "metric": metric, "value": value, "run_id": f"{task}-{seed}"}


def test_reports_score_pos_on_the_metric_chosen():
    results = pd.DataFrame([rows("pos", "f1", 70.0, 1), rows("pos", "token_accuracy", 90.0, 1),
                            rows("pos", "f1", 72.0, 2), rows("pos", "token_accuracy", 94.0, 2),
                            rows("ner", "f1", 50.0, 1)])
    assert main_table(results).loc[("pos", 5, "ord-FS"), "mean"] == 71.0  # the paper's F1 by default
    chosen = choose_metrics(results, {"pos": "token_accuracy"})
    assert main_table(chosen).loc[("pos", 5, "ord-FS"), "mean"] == 92.0
    assert main_table(chosen).loc[("ner", 5, "ord-FS"), "mean"] == 50.0  # other tasks untouched
    with pytest.raises(ValueError, match="no 'accuracy' rows; its metrics here: f1, token_accuracy"):
        choose_metrics(results, {"pos": "accuracy"})
