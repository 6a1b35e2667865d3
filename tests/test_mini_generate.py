"""The offline mini benchmark (fslib.prepare.mini): determinism, XTREME layout and counts, label validity, and the
cross-script property of the synthetic languages. The files are parsed with small readers of their own here,
independent of fslib.data."""

from __future__ import annotations

import collections
import csv
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from fslib.core.languages import MINI_LANGS, MINI_LANGUAGES
from fslib.core.tasks import NER_LABELS, UPOS_LABELS, XNLI_LABELS
from fslib.prepare.mini import MANIFEST, generate

TARGETS = tuple(MINI_LANGUAGES)
TAGGING_FOLDERS = {"ner": "panx", "pos": "udpos"}


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("mini") / "download", seed=0)


# --- small readers -----------------------------------------------------------------------------------------------

def read_tagging(path: Path) -> list[list[tuple[str, str]]]:
    text = path.read_text(encoding="utf-8")
    # XTREME's layout: one blank line between sentences, the file ends with the last token line.
    assert text.endswith("\n") and not text.endswith("\n\n"), path
    assert "\n\n\n" not in text and "\r" not in text, path
    sentences = []
    for block in text[:-1].split("\n\n"):
        pairs = [tuple(line.split("\t")) for line in block.split("\n")]
        assert all(len(pair) == 2 and pair[0] and " " not in pair[0] for pair in pairs), path
        sentences.append(pairs)
    return sentences


def read_xnli(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\r\n") and raw.count(b"\r\n") == raw.count(b"\n"), f"{path}: CRLF lines expected"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert all(len(row) == 3 for row in rows), path
    return rows


def read_squad(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    assert data["version"] == "TyDiQA-GoldP-1.1-for-SQuAD-1.1"
    return data["data"]


def tydiqa_path(root: Path, lang: str, split: str) -> Path:
    if split == "train":
        return root / f"tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.{lang}.train.json"
    return root / f"tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json"


def data_path(root: Path, task: str, lang: str, split: str) -> Path:
    if task == "tydiqa":
        return tydiqa_path(root, lang, split)
    folder = TAGGING_FOLDERS.get(task, "xnli")
    return root / folder / f"{split}-{lang}.tsv"


def count_examples(root: Path, task: str, lang: str, split: str) -> int:
    path = data_path(root, task, lang, split)
    if task in TAGGING_FOLDERS:
        return len(read_tagging(path))
    if task == "xnli":
        return len(read_xnli(path))
    return sum(len(p["qas"]) for doc in read_squad(path) for p in doc["paragraphs"])


def all_files(root: Path) -> list[Path]:
    return sorted(path.relative_to(root) for path in root.rglob("*") if path.is_file())


# --- determinism ---------------------------------------------------------------------------------------------------

def test_same_seed_gives_identical_bytes_in_another_process(mini, tmp_path):
    # Another process with another hash seed: catches any use of Python's salted hash() or set order.
    again = tmp_path / "again"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", f"from fslib.prepare.mini import generate; generate({str(again)!r}, seed=0)"],
                   check=True, env=env, cwd=Path(__file__).resolve().parents[1])
    assert all_files(again) == all_files(mini)
    for rel in all_files(mini):
        assert (again / rel).read_bytes() == (mini / rel).read_bytes(), rel


def test_another_seed_changes_the_data(mini, tmp_path):
    other = generate(tmp_path / "other", seed=1)
    assert all_files(other) == all_files(mini)
    differing = [rel for rel in all_files(mini) if (other / rel).read_bytes() != (mini / rel).read_bytes()]
    assert len(differing) == len(all_files(mini))  # every data file, and the manifest (its seed)
    assert json.loads((other / MANIFEST).read_text(encoding="utf-8"))["seed"] == 1


# --- layout and counts ------------------------------------------------------------------------------------------

def test_manifest_describes_exactly_the_files_written(mini):
    text = (mini / MANIFEST).read_text(encoding="utf-8")
    manifest = json.loads(text)
    assert text == json.dumps(manifest, indent=1, sort_keys=True)
    assert manifest["seed"] == 0
    assert manifest["languages"] == list(MINI_LANGS)
    counts = manifest["counts"]
    assert set(counts) == {"ner", "pos", "tydiqa", "xnli"}
    expected_files = {Path(MANIFEST)}
    for task, per_lang in counts.items():
        assert set(per_lang) == set(MINI_LANGS)
        for lang, per_split in per_lang.items():
            if lang == "en":
                expected = {"train": 2000, "dev": 300, "test": 300}
            else:
                expected = {"train": 100, "dev": 200, "test": 200}
            if task == "xnli" and lang != "en":
                del expected["train"]  # XNLI has no target training data
            if task == "tydiqa":
                del expected["dev"]  # the TyDiQA dev file is the test split
            assert per_split == expected, (task, lang)
            for split, n in per_split.items():
                assert count_examples(mini, task, lang, split) == n, (task, lang, split)
                expected_files.add(data_path(mini, task, lang, split).relative_to(mini))
    assert set(all_files(mini)) == expected_files


# --- NER and POS ----------------------------------------------------------------------------------------------------

def tagging_files(root: Path, task: str):
    for lang in MINI_LANGS:
        for split in ("train", "dev", "test"):
            yield lang, split, read_tagging(data_path(root, task, lang, split))


def test_ner_labels_are_valid_bio(mini):
    for lang, split, sentences in tagging_files(mini, "ner"):
        labels = collections.Counter(label for sentence in sentences for _, label in sentence)
        assert set(labels) <= set(NER_LABELS), (lang, split)
        for sentence in sentences:
            previous = "O"
            for _, label in sentence:
                if label.startswith("I-"):  # an I-X continues a B-X or I-X of the same type
                    assert previous != "O" and previous[2:] == label[2:], (lang, split, sentence)
                previous = label
    train = collections.Counter(label for s in read_tagging(mini / "panx/train-en.tsv") for _, label in s)
    assert set(train) == set(NER_LABELS)


def test_pos_tags_cover_all_upos_and_homographs_need_context(mini):
    for lang, split, sentences in tagging_files(mini, "pos"):
        assert {tag for sentence in sentences for _, tag in sentence} <= set(UPOS_LABELS), (lang, split)
    train = read_tagging(mini / "udpos/train-en.tsv")
    assert {tag for sentence in train for _, tag in sentence} == set(UPOS_LABELS)
    tags_of = collections.defaultdict(set)
    for sentence in train:
        for token, tag in sentence:
            tags_of[token.lower()].add(tag)
    assert sum({"NOUN", "VERB"} <= tags for tags in tags_of.values()) >= 5
    assert {"PART", "ADP"} <= tags_of["to"] and {"DET", "SCONJ"} <= tags_of["that"]


@pytest.mark.parametrize("task", ["ner", "pos"])
def test_sentence_lengths_and_variety(mini, task):
    for lang, split, sentences in tagging_files(mini, task):
        lengths = [len(sentence) for sentence in sentences]
        long = [n for n in lengths if n > 30]
        assert long and all(60 <= n <= 90 for n in long), (lang, split)  # a few long ones, for segmenting
        assert len(long) <= max(3, len(lengths) // 50)
        assert all(n >= 5 for n in lengths)
        distinct = {tuple(token for token, _ in sentence) for sentence in sentences}
        assert len(distinct) >= 0.98 * len(sentences), (lang, split)


def entity_names(sentences) -> set[str]:
    names, current = set(), []
    for sentence in sentences:
        for token, label in sentence + [("", "O")]:
            if label.startswith("I-"):
                current.append(token)
                continue
            if current:
                names.add(" ".join(current))
            current = [token] if label.startswith("B-") else []
    return names


def test_test_sets_have_entity_names_unseen_in_training(mini):
    train = entity_names(read_tagging(mini / "panx/train-en.tsv"))
    test = entity_names(read_tagging(mini / "panx/test-en.tsv"))
    unseen = test - train
    assert len(unseen) >= 0.1 * len(test) and len(test - unseen) >= 0.3 * len(test)
    assert any(not any(label.startswith("B-") for _, label in s) for s in read_tagging(mini / "panx/train-en.tsv"))


def test_sov_languages_put_verbs_last_and_adjectives_after_nouns(mini):
    for lang in TARGETS:
        sentences = read_tagging(mini / f"udpos/train-{lang}.tsv") + read_tagging(mini / f"udpos/dev-{lang}.tsv")
        # The last word is the verb group's ("sells", "does not sell", "is not" -> "is" "not" in SOV).
        verb_final = sum(s[-2][1] in ("VERB", "AUX", "PART") for s in sentences) / len(sentences)
        bigrams = collections.Counter((a[1], b[1]) for s in sentences for a, b in zip(s, s[1:]))
        # An ADJ NOUN bigram can still span two constituents in SOV ("[the friends tired] [bottles] ...").
        if MINI_LANGUAGES[lang].family.endswith("SOV"):
            assert verb_final > 0.95 and bigrams[("NOUN", "ADJ")] > 10 * bigrams[("ADJ", "NOUN")], lang
        else:
            assert verb_final < 0.6 and bigrams[("ADJ", "NOUN")] > 10 * bigrams[("NOUN", "ADJ")], lang


# --- the scripts --------------------------------------------------------------------------------------------------

def word_forms(root: Path, lang: str) -> set[str]:
    """Forms of `lang` that contain a letter (punctuation, digits and symbols are shared by design)."""
    forms = set()
    for task in TAGGING_FOLDERS:
        for split in ("train", "dev", "test"):
            forms.update(token for s in read_tagging(data_path(root, task, lang, split)) for token, _ in s)
    for row in read_xnli(data_path(root, "xnli", lang, "test")):
        forms.update(re.findall(r"\w+", row[0] + " " + row[1]))
    doc = read_squad(tydiqa_path(root, lang, "test"))
    forms.update(re.findall(r"\w+", " ".join(d["paragraphs"][0]["context"] for d in doc)))
    return {form for form in forms if any(ch.isalpha() for ch in form)}


def script_of(lang: str) -> str:
    return "Latin" if lang == "en" else MINI_LANGUAGES[lang].script


def test_word_forms_are_disjoint_across_scripts_and_shared_within(mini):
    forms = {lang: word_forms(mini, lang) for lang in MINI_LANGS}
    letter_script = {"Latin": "LATIN", "Cyrillic": "CYRILLIC", "Greek": "GREEK"}
    for lang, lang_forms in forms.items():
        prefix = letter_script[script_of(lang)]
        letters = {ch for form in lang_forms for ch in form if ch.isalpha()}
        assert all(unicodedata.name(ch).startswith(prefix) for ch in letters), lang
    names = {lang: entity_names(read_tagging(mini / f"panx/train-{lang}.tsv")
                                + read_tagging(mini / f"panx/test-{lang}.tsv")) for lang in MINI_LANGS}
    for a in MINI_LANGS:
        for b in MINI_LANGS:
            if a >= b:
                continue
            shared = forms[a] & forms[b]
            if script_of(a) != script_of(b):
                assert not shared, (a, b, sorted(shared)[:10])
            else:  # same script: at least the entity names are shared
                assert len(shared) >= 100 and len(names[a] & names[b]) >= 20, (a, b)


def test_languages_of_a_family_are_related_but_not_identical(mini):
    from fslib.prepare.mini.lexicon import dictionary, vocabulary

    for family in (("qa", "qc", "qe"), ("qb", "qd", "qf")):
        stems = [dictionary(lang) for lang in family]
        same = sum(len({d[w] for d in stems}) == 1 for w in vocabulary())
        assert 0 < same < len(vocabulary())  # a shared stem, shifted vowels in some words
    assert sum(dictionary("qa")[w] == dictionary("qb")[w] for w in vocabulary()) < 5  # families differ


# --- XNLI ---------------------------------------------------------------------------------------------------------

def test_xnli_labels_balanced_and_quotes_round_trip(mini):
    for lang in MINI_LANGS:
        splits = ("train", "dev", "test") if lang == "en" else ("dev", "test")
        assert not (lang != "en" and (mini / f"xnli/train-{lang}.tsv").exists())
        for split in splits:
            rows = read_xnli(mini / f"xnli/{split}-{lang}.tsv")
            counts = collections.Counter(row[2] for row in rows)
            assert set(counts) == set(XNLI_LABELS)
            assert max(counts.values()) - min(counts.values()) <= 1, (lang, split, counts)
            assert all(row[0] and row[1] and row[0] != row[1] for row in rows)
    rows = read_xnli(mini / "xnli/train-en.tsv")
    quoted = [row for row in rows if '"' in row[0]]
    assert quoted and all(row[0].count('"') % 2 == 0 for row in quoted)
    assert b'""' in (mini / "xnli/train-en.tsv").read_bytes()  # csv doubled the quotes


def test_xnli_labels_follow_from_the_text(mini):
    rows = read_xnli(mini / "xnli/train-en.tsv")
    for premise, hypothesis, label in rows:
        # Words, lower case, with "an" read as "a" (dropping "old" from "an old car" leaves "a car").
        p_words = {"a" if w == "an" else w for w in re.findall(r"\w+", premise.lower())}
        h_words = {"a" if w == "an" else w for w in re.findall(r"\w+", hypothesis.lower())}
        if label == "entailment":  # a generalisation: nothing new, something dropped
            assert h_words <= p_words and len(hypothesis) < len(premise), (premise, hypothesis)
        else:  # something new: a negation, a changed attribute, or added information
            assert h_words - p_words, (premise, hypothesis, label)


# --- TyDiQA -------------------------------------------------------------------------------------------------------

def test_tydiqa_documents_and_answer_spans(mini):
    for lang in MINI_LANGS:
        for split in ("train", "test"):
            docs = read_squad(tydiqa_path(mini, lang, split))
            two_answers = 0
            words = []
            for doc in docs:
                assert len(doc["paragraphs"]) == 1 and len(doc["paragraphs"][0]["qas"]) == 1
                context = doc["paragraphs"][0]["context"]
                qa = doc["paragraphs"][0]["qas"][0]
                words.append(len(context.split()))
                assert qa["answers"] and qa["question"]
                for answer in qa["answers"]:
                    start, text = answer["answer_start"], answer["text"]
                    assert text and context[start:start + len(text)] == text, (lang, split, qa["id"])
                if split == "train":
                    assert set(doc) == {"paragraphs"} and re.fullmatch(r"\d+", qa["id"])
                    assert len(qa["answers"]) == 1
                else:
                    assert doc["title"] and re.fullmatch(rf"{lang}-\d+-0", qa["id"])
                    two_answers += len(qa["answers"]) == 2
            ids = [doc["paragraphs"][0]["qas"][0]["id"] for doc in docs]
            assert len(set(ids)) == len(ids)
            assert sum(250 <= n <= 400 for n in words) >= 3, (lang, split)  # exercise sliding windows
            assert sum(30 <= n <= 80 for n in words) >= 0.9 * len(docs)
            if split == "test":
                assert 0.1 * len(docs) <= two_answers <= 0.3 * len(docs), (lang, two_answers)
