"""source="ud": real UD treebanks (the shared copy beside the repository, see fslib.formats.ud.default_ud_dir) read to
the counts their README states, multi-word tokens skipped, missing splits carved so that every sentence appears
exactly once, and bad input named."""

import shutil
from collections import Counter

import pytest

from fslib.data import load_shots, load_split, sample_shots
from fslib.formats.errors import DataError
from fslib.formats.ud import carve, choose_treebank, default_ud_dir, read_conllu, ud_languages

UD_DIR = default_ud_dir()
pytestmark = pytest.mark.skipif(not UD_DIR.is_dir(), reason=f"no UD treebanks at {UD_DIR} (the shared folder "
                                                            f"beside the repository; or set FSLIB_UD_DIR)")


def words(lang: str, treebank: str | None = None) -> int:
    return sum(len(row["tokens"]) for split in ("train", "dev", "test")
               for row in load_split("pos", lang, split, source="ud", data_dir=UD_DIR, treebank=treebank))


@pytest.mark.parametrize("lang, treebank, expected", [
    ("en", "PUD", 21180), ("fr", None, 24726), ("de", None, 21332), ("pt", None, 23407), ("ja", None, 26707),
    ("en", None, 25147 + 25094),  # EWT (the default: larger than PUD; its train file is not in the shared copy)
    ("mr", None, 2997 + 438 + 412),
])
def test_word_counts_match_the_treebank_readme(lang, treebank, expected):
    # the README of the shared folder counts syntactic words, as UD's statistics do
    assert words(lang, treebank) == expected


def test_multiword_tokens_are_read_as_their_words():
    sentences = read_conllu(UD_DIR / "UD_French-PUD" / "fr_pud-ud-test.conllu")
    lines = (UD_DIR / "UD_French-PUD" / "fr_pud-ud-test.conllu").read_text(encoding="utf-8").splitlines()
    ranges = sum(1 for line in lines if line.split("\t")[0].count("-") == 1)
    assert ranges > 100  # French PUD writes "du", "au", "des" as ranges over two words
    first = sentences[0]  # "... sans précédent aux États-Unis ..." : "aux" is the range 15-16 "à les"
    assert "aux" not in first.tokens and first.tokens[first.tokens.index("à") + 1] == "les"
    assert len(first.tokens) == len(first.tags) and "_" not in first.tags


def test_empty_nodes_are_skipped(tmp_path):
    folder = tmp_path / "UD_Test-Toy"
    folder.mkdir()
    (folder / "xx_toy-ud-test.conllu").write_text(
        "# sent_id = s1\n"
        "1\tI\tI\tPRON\t_\t_\t2\tnsubj\t_\t_\n"
        "2\tslept\tsleep\tVERB\t_\t_\t0\troot\t_\t_\n"
        "2.1\tslept\tsleep\tVERB\t_\t_\t_\t_\t0:root\t_\n"
        "3-4\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "3\tdo\tdo\tAUX\t_\t_\t2\taux\t_\t_\n"
        "4\tn't\tnot\tPART\t_\t_\t2\tadvmod\t_\t_\n\n", encoding="utf-8")
    assert read_conllu(folder / "xx_toy-ud-test.conllu")[0].tokens == ["I", "slept", "do", "n't"]
    assert read_conllu(folder / "xx_toy-ud-test.conllu")[0].tags == ["PRON", "VERB", "AUX", "PART"]


@pytest.mark.parametrize("lang", ["en", "yo", "fr", "af"])
def test_carving_partitions_every_sentence_exactly_once(lang):
    treebank = choose_treebank(UD_DIR, lang)
    in_files = Counter(s.sent_id for _, path in treebank.files for s in read_conllu(path))
    splits = carve(treebank)
    carved = Counter(s.sent_id for split in ("train", "dev", "test") for s in splits[split])
    assert carved == in_files
    assert all(len(splits[split]) > 0 for split in ("train", "dev", "test"))
    rows = sum(len(load_split("pos", lang, split, source="ud", data_dir=UD_DIR)) for split in ("train", "dev", "test"))
    assert rows == sum(in_files.values())


def test_files_that_exist_keep_their_split():
    # af has all three files: nothing is carved; en EWT lacks train: its test file stays test, dev is carved
    af = choose_treebank(UD_DIR, "af")
    assert [len(carve(af)[split]) for split in ("train", "dev", "test")] == [1315, 194, 425]
    ewt = carve(choose_treebank(UD_DIR, "en"))
    assert len(ewt["test"]) == 2077 and len(ewt["train"]) + len(ewt["dev"]) == 2001
    assert len(ewt["train"]) > 3 * len(ewt["dev"])  # 80% / 20% of the dev file


def test_parallel_treebanks_are_carved_alike():
    # the PUD sentences share sent_ids across languages: one language's shots are never another's test sentences
    de = {split: [s.sent_id for s in part] for split, part in carve(choose_treebank(UD_DIR, "de")).items()}
    ja = {split: [s.sent_id for s in part] for split, part in carve(choose_treebank(UD_DIR, "ja")).items()}
    assert de == ja


def test_default_and_named_treebanks():
    assert choose_treebank(UD_DIR, "en").name == "UD_English-EWT"
    for name in ("PUD", "pud", "UD_English-PUD"):
        assert choose_treebank(UD_DIR, "en", name).name == "UD_English-PUD"
    with pytest.raises(DataError,
                       match=r"no UD treebank 'GUM' for 'en'; its treebanks: UD_English-EWT, UD_English-PUD"):
        choose_treebank(UD_DIR, "en", "GUM")


def test_unknown_language_lists_the_languages_of_the_folder():
    with pytest.raises(DataError, match=r"no UD treebank for language 'xx'; languages there: af, ar, .*yo, zh"):
        load_split("pos", "xx", "test", source="ud", data_dir=UD_DIR)
    assert {"en", "hi", "mr", "ja", "zh", "yo", "wo"} <= set(ud_languages(UD_DIR))


def test_ud_is_pos_only():
    with pytest.raises(DataError, match="POS data only"):
        load_split("ner", "de", "test", source="ud", data_dir=UD_DIR)


@pytest.mark.parametrize("line, message", [
    ("5\tbroken\tbroken\tNOUN\t_\t_\t4\tnmod\n", r"de_pud-ud-test.conllu:{n}: expected 10 tab-separated"),
    ("5\tbroken\tbroken\tNOM\t_\t_\t4\tnmod\t_\t_\n", r"de_pud-ud-test.conllu:{n}: UPOS 'NOM' is not one of ADJ"),
    ("five\tbroken\tbroken\tNOUN\t_\t_\t4\tnmod\t_\t_\n", r"de_pud-ud-test.conllu:{n}: ID 'five' is not a word"),
])
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    folder = tmp_path / "UD_German-PUD"
    shutil.copytree(UD_DIR / "UD_German-PUD", folder)
    path = folder / "de_pud-ud-test.conllu"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, text in enumerate(lines, 1) if i > 500 and text[:1].isdigit())
    lines[number - 1] = line
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match=message.format(n=number)):
        load_split("pos", "de", "test", source="ud", data_dir=tmp_path)


def test_shots_on_ud_data():
    pool = load_split("pos", "yo", "train", source="ud", data_dir=UD_DIR)
    shots = sample_shots(pool, "pos", 5, seed=1)
    assert len(shots) == 5 and set(shots["lang"]) == {"yo"}
    assert shots.to_list() == load_shots("pos", "yo", 5, 1, source="ud", data_dir=UD_DIR).to_list()
    assert sample_shots(pool, "pos", 1, seed=1).to_list() == shots.to_list()[:1]  # nested across K
    test = {tuple(row["tokens"]) for row in load_split("pos", "yo", "test", source="ud", data_dir=UD_DIR)}
    assert not test & {tuple(row["tokens"]) for row in shots}
