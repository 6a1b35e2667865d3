"""source="uner": the shared Universal NER treebanks (fslib.formats.uner.default_uner_dir) read to the counts their
README states, OTH read as O, missing splits carved exactly as the UD reader carves the same sentences (so a PUD
sentence is in the same split for NER and POS), and bad input named with its file and line."""

import shutil
from collections import Counter

import pytest

from fslib.core.languages import language
from fslib.core.tasks import NER_LABELS, SPLITS
from fslib.data import load_shots, load_split
from fslib.formats.errors import DataError
from fslib.formats.ud import default_ud_dir, read_ud_split
from fslib.formats.uner import (
    choose_uner_treebank,
    default_uner_dir,
    find_uner_treebanks,
    read_iob2,
    read_uner_split,
    uner_languages,
)

UNER_DIR = default_uner_dir()
UD_DIR = default_ud_dir()
pytestmark = pytest.mark.skipif(not UNER_DIR.is_dir(), reason=f"no UNER treebanks at {UNER_DIR} (the shared folder "
                                                              f"beside the repository; or set FSLIB_UNER_DIR)")


# The README of the shared folder: sentences, tokens, entities (B- tags, OTH included) and OTH entities per file.
README = [
    ("UNER_English-EWT/en_ewt-ud-dev.iob2", 2001, 25149, 966, 0),
    ("UNER_English-EWT/en_ewt-ud-test.iob2", 2077, 25097, 1088, 0),
    ("UNER_German-PUD/de_pud-ud-test.iob2", 1000, 21331, 1039, 0),
    ("UNER_Portuguese-PUD/pt_pud-ud-test.iob2", 1000, 23407, 1099, 0),
    ("UNER_Russian-PUD/ru_pud-ud-test.iob2", 1000, 19355, 1036, 0),
    ("UNER_Chinese-PUD/zh_pud-ud-test.iob2", 1000, 21415, 1139, 0),
    ("UNER_Swedish-PUD/sv_pud-ud-test.iob2", 1000, 19076, 1029, 0),
    ("UNER_Danish-DDT/da_ddt-ud-dev.iob2", 564, 10332, 379, 0),
    ("UNER_Danish-DDT/da_ddt-ud-test.iob2", 565, 10023, 446, 0),
    ("UNER_Croatian-SET/hr_set-ud-dev.iob2", 960, 22292, 1372, 154),
    ("UNER_Croatian-SET/hr_set-ud-test.iob2", 1136, 24260, 1536, 133),
    ("UNER_Slovak-SNK/sk_snk-ud-dev.iob2", 1060, 12733, 636, 0),
    ("UNER_Slovak-SNK/sk_snk-ud-test.iob2", 1061, 12736, 915, 0),
    ("UNER_Serbian-SET/sr_set-ud-dev.iob2", 536, 11993, 842, 100),
    ("UNER_Serbian-SET/sr_set-ud-test.iob2", 520, 11421, 901, 54),
]


@pytest.mark.parametrize("file, sentences, tokens, entities, oth", README)
def test_counts_match_the_readme_with_oth_read_as_o(file, sentences, tokens, entities, oth):
    read = read_iob2(UNER_DIR / file)
    assert len(read) == sentences
    assert sum(len(s.tokens) for s in read) == tokens
    tags = Counter(tag for s in read for tag in s.tags)
    assert set(tags) <= set(NER_LABELS)  # no OTH left
    assert sum(n for tag, n in tags.items() if tag.startswith("B-")) == entities - oth


def test_oth_tokens_become_o_and_nothing_else_changes():
    path = UNER_DIR / "UNER_Croatian-SET" / "hr_set-ud-dev.iob2"
    raw = [line.split("\t")[2] for line in path.read_text(encoding="utf-8").splitlines()
           if line and not line.startswith("#")]
    read = [tag for s in read_iob2(path) for tag in s.tags]
    assert len(raw) == len(read) and Counter(raw)["B-OTH"] == 154
    assert all(r == t if not r.endswith("-OTH") else t == "O" for r, t in zip(raw, read))


def test_language_codes_and_names():
    assert uner_languages(UNER_DIR) == sorted("en de pt ru zh sv da hr sk sr".split())
    for lang, treebanks in find_uner_treebanks(UNER_DIR).items():
        folder_language = treebanks[0].name.split("_")[1].split("-")[0]
        assert language(lang).name in (folder_language, "Mandarin")  # Table 3 calls Chinese "Mandarin"
        assert language(lang).script != "unknown"


def test_a_folder_named_for_another_language_is_refused(tmp_path):
    folder = tmp_path / "UNER_German-Toy"
    folder.mkdir()
    (folder / "ru_toy-ud-test.iob2").write_text("# sent_id = a\n1\tX\tO\t-\t-\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"UNER_German-Toy: the folder says German \('de'\).*'ru'"):
        find_uner_treebanks(tmp_path)


def test_english_trains_on_a_carve_of_ewt_dev_and_tests_on_ewt_test():
    split = {s: read_uner_split(UNER_DIR, "en", s) for s in SPLITS}
    dev_file = read_iob2(UNER_DIR / "UNER_English-EWT" / "en_ewt-ud-dev.iob2")
    test_file = read_iob2(UNER_DIR / "UNER_English-EWT" / "en_ewt-ud-test.iob2")
    assert [s.sent_id for s in split["test"]] == [s.sent_id for s in test_file]
    assert sorted(s.sent_id for s in split["train"] + split["dev"]) == sorted(s.sent_id for s in dev_file)
    assert len(split["train"]) == 1578  # 80% of the dev file by the hash, as the UD reader carves EWT for POS


@pytest.mark.parametrize("lang", ["de", "sv", "hr"])
def test_carving_partitions_every_sentence_exactly_once(lang):
    treebank = choose_uner_treebank(UNER_DIR, lang)
    in_files = Counter(s.sent_id for _, path in treebank.files for s in read_iob2(path))
    carved = Counter(s.sent_id for split in SPLITS for s in read_uner_split(UNER_DIR, lang, split))
    assert carved == in_files and all(read_uner_split(UNER_DIR, lang, split) for split in SPLITS)
    if "test" in treebank.split_files and "dev" in treebank.split_files:  # files that exist keep their split
        assert len(read_uner_split(UNER_DIR, lang, "test")) == len(read_iob2(treebank.split_files["test"]))


@pytest.mark.skipif(not UD_DIR.is_dir(), reason=f"no UD treebanks at {UD_DIR}")
@pytest.mark.parametrize("lang, treebank", [("de", "PUD"), ("pt", "PUD"), ("ru", "PUD"), ("zh", "PUD"),
                                            ("en", "EWT")])
def test_a_sentence_is_in_the_same_split_for_ner_and_pos(lang, treebank):
    """UNER renamed the PUD sentences (n01001-0001 for UD's n01001011; Chinese batch-0000-0001): each is carved by
    its UD sentence's sent_id, so NER and POS split the same sentences alike."""
    pos = {s.sent_id: (split, s.tokens) for split in SPLITS for s in read_ud_split(UD_DIR, lang, split, treebank)}
    ner = [(split, s) for split in SPLITS for s in read_uner_split(UNER_DIR, lang, split, treebank)]
    assert len(ner) == len(pos) and len({s.carve_id for _, s in ner}) == len(pos)  # one UD sentence each
    assert all(pos[s.carve_id][0] == split for split, s in ner)
    same_words = sum("".join(pos[s.carve_id][1]).replace(" ", "") == "".join(s.tokens).replace(" ", "")
                     for _, s in ner)
    assert same_words >= 0.99 * len(ner)  # and they are the same sentences (UNER re-tokenised a few)


def test_parallel_pud_targets_share_their_splits():
    splits = {lang: [s.carve_id for s in read_uner_split(UNER_DIR, lang, "train")] for lang in ("de", "ru", "zh")}
    if not UD_DIR.is_dir():
        pytest.skip("the PUD sets are aligned by their UD sent_ids")
    assert set(splits["de"]) == set(splits["ru"]) == set(splits["zh"]) and len(splits["de"]) == 370


@pytest.mark.parametrize("old, new, line, message", [
    ("2\tprivatizacije\tO\t", "2\tprivatizacije\tB-MISC\t", 6, r"tag 'B-MISC' is not one of O, B-PER"),
    ("2\tprivatizacije\tO\tO\t-", "2 privatizacije O O -", 6, "expected tab-separated index, token and IOB2 "
                                                             "tag, found 1 column"),
    ("2\tprivatizacije", "3\tprivatizacije", 6, "token index '3', expected 2"),
])
def test_a_broken_line_names_the_file_and_line(tmp_path, old, new, line, message):
    folder = tmp_path / "UNER_Serbian-SET"
    shutil.copytree(UNER_DIR / "UNER_Serbian-SET", folder)
    path = folder / "sr_set-ud-dev.iob2"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[line - 1].startswith(old), lines[line - 1]  # the file as the test expects it
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match=f"{path}:{line}: {message}"):
        read_uner_split(tmp_path, "sr", "train")


def test_load_split_and_shots_through_datasets():
    train = load_split("ner", "en", "train", source="uner", data_dir=UNER_DIR)
    assert len(train) == 1578 and set(train.column_names) == {"tokens", "tags", "lang"}
    assert {tag for tags in train["tags"] for tag in tags} == set(NER_LABELS)
    assert len(load_split("ner", "hr", "test", source="uner", data_dir=UNER_DIR)) == 1136
    shots = load_shots("ner", "sr", 5, 1, source="uner", data_dir=UNER_DIR)
    pool = {tuple(s.tokens) for s in read_uner_split(UNER_DIR, "sr", "train")}
    assert len(shots) == 5 and all(tuple(row) in pool for row in shots["tokens"])


def test_uner_is_ner_only_and_names_the_languages():
    with pytest.raises(DataError, match="NER data only, not 'pos'"):
        load_split("pos", "en", "test", source="uner", data_dir=UNER_DIR)
    with pytest.raises(DataError, match="no UNER treebank for language 'fr'; languages there: da, de, en"):
        load_split("ner", "fr", "test", source="uner", data_dir=UNER_DIR)
