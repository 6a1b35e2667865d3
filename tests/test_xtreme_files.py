"""The on-disk XTREME layout: hand-written files in the exact formats load to the expected rows, and bad files
fail with the file and line named."""

import shutil

import pytest

from fslib.data import load_split
from fslib.formats.errors import DataError


def test_panx_file_as_download_data_writes_it(xtreme_fixtures):
    rows = load_split("ner", "de", "train", source="xtreme", data_dir=xtreme_fixtures).to_list()
    assert rows == [
        {"tokens": ["Angela", "Merkel", "besucht", "Paris", "."], "tags": ["B-PER", "I-PER", "O", "B-LOC", "O"],
         "lang": "de"},
        {"tokens": ["Die", "Deutsche", "Bahn", "streikt"], "tags": ["O", "B-ORG", "I-ORG", "O"], "lang": "de"},
        {"tokens": ["Köln"], "tags": ["B-LOC"], "lang": "de"},
    ]


def test_udpos_file(xtreme_fixtures):
    rows = load_split("pos", "fr", "dev", source="xtreme", data_dir=xtreme_fixtures).to_list()
    assert [row["tokens"] for row in rows] == [["Le", "chat", "dort", "."], ["Il", "a", "mangé"]]
    assert rows[1]["tags"] == ["PRON", "AUX", "VERB"]


def test_xnli_file_with_csv_quoting(xtreme_fixtures):
    rows = load_split("xnli", "fr", "dev", source="xtreme", data_dir=xtreme_fixtures).to_list()
    assert rows[0] == {"premise": 'Il pleut à "Paris".', "hypothesis": "Le temps est sec.",
                       "label": "contradiction", "lang": "fr"}
    assert [row["label"] for row in rows] == ["contradiction", "entailment", "neutral"]


def test_tydiqa_json_train_and_dev(xtreme_fixtures):
    train = load_split("tydiqa", "fi", "train", source="xtreme", data_dir=xtreme_fixtures).to_list()
    assert train[1] == {"id": "1288390216011", "context": "Sibelius syntyi vuonna 1865.",
                        "question": "Milloin Sibelius syntyi?",
                        "answers": {"text": ["1865"], "answer_start": [23]}, "lang": "fi"}
    test = load_split("tydiqa", "fi", "test", source="xtreme", data_dir=xtreme_fixtures).to_list()
    assert test[0]["id"] == "finnish-2410001-0"
    assert test[0]["answers"] == {"text": ["Hämeenlinnassa", "Hämeenlinna"], "answer_start": [21, 21]}
    # a target's TyDiQA dev split is its train split without the shots, so it needs k and seed
    with pytest.raises(DataError, match="pass k and seed"):
        load_split("tydiqa", "fi", "dev", source="xtreme", data_dir=xtreme_fixtures)
    dev = load_split("tydiqa", "fi", "dev", source="xtreme", data_dir=xtreme_fixtures, k=1, seed=1)
    assert len(dev) == 1


@pytest.fixture
def scratch(tmp_path, xtreme_fixtures):
    shutil.copytree(xtreme_fixtures, tmp_path, dirs_exist_ok=True)
    return tmp_path


@pytest.mark.parametrize("content, message", [
    ("Angela\tB-PER\nMerkel\tI-PER\textra\n", r"train-de.tsv:2: expected 'token<TAB>label', found 3"),
    ("Angela\tB-PER\n\nMerkel\tB-PERSON\n", r"train-de.tsv:3: label 'B-PERSON' is not in the label set \(O, B-PER"),
])
def test_malformed_tagging_line_names_file_and_line(scratch, content, message):
    (scratch / "panx" / "train-de.tsv").write_text(content)
    with pytest.raises(DataError, match=message):
        load_split("ner", "de", "train", source="xtreme", data_dir=scratch)


def test_malformed_xnli_row_names_file_and_line(scratch):
    (scratch / "xnli" / "dev-fr.tsv").write_text("a\tb\tneutral\r\na\tb\tmaybe\r\n")
    with pytest.raises(DataError, match=r"dev-fr.tsv:2: label 'maybe' is not one of contradiction"):
        load_split("xnli", "fr", "dev", source="xtreme", data_dir=scratch)
    (scratch / "xnli" / "dev-fr.tsv").write_text("a\tb\tneutral\tx\r\n")
    with pytest.raises(DataError, match=r"dev-fr.tsv:1: expected 'premise<TAB>hypothesis<TAB>label', found 4"):
        load_split("xnli", "fr", "dev", source="xtreme", data_dir=scratch)


def test_tydiqa_answer_outside_context(scratch):
    path = scratch / "tydiqa" / "tydiqa-goldp-v1.1-train" / "tydiqa.goldp.fi.train.json"
    path.write_text(path.read_text().replace('"answer_start": 23', '"answer_start": 3'))
    with pytest.raises(DataError, match=r"tydiqa.goldp.fi.train.json: question '1288390216011': answer '1865'"):
        load_split("tydiqa", "fi", "train", source="xtreme", data_dir=scratch)


def test_test_file_without_labels_says_why(xtreme_fixtures):
    with pytest.raises(DataError, match=r"test-de.tsv:1: a token without a label; XTREME's download_data.sh"):
        load_split("ner", "de", "test", source="xtreme", data_dir=xtreme_fixtures)


def test_missing_file_says_where_and_how(xtreme_fixtures):
    with pytest.raises(DataError) as error:
        load_split("ner", "fr", "train", source="xtreme", data_dir=xtreme_fixtures)
    message = str(error.value)
    assert "panx/train-fr.tsv: no such file" in message
    assert "languages with this split there: de" in message
    assert "download_data.sh" in message and "source='hub'" in message


@pytest.mark.parametrize("args, message", [
    (("nerr", "de", "train"), "unknown task 'nerr'; valid tasks: ner, pos, tydiqa, xnli"),
    (("ner", "de", "validation"), "unknown split 'validation'; valid splits: train, dev, test"),
    (("ner", "xx", "train"), "unknown language 'xx' for ner; valid: ar, he"),
])
def test_unknown_names_list_the_valid_ones(args, message):
    with pytest.raises(ValueError, match=message):
        load_split(*args, source="hub")


def test_xnli_target_has_no_train_split(xtreme_fixtures):
    with pytest.raises(DataError, match="XNLI has no training data in 'fr'"):
        load_split("xnli", "fr", "train", source="xtreme", data_dir=xtreme_fixtures)
