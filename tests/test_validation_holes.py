"""Nothing silently accepted: every value a parameter file gives is checked before any run starts (finite
numbers, upper bounds that name the limit, types, duplicates, languages, an empty grid, a missing local model), an
alias bomb is refused in well under a second, and text that is not UTF-8 (a parameter file, a data file) is an
error naming the file and the line."""

import time
from pathlib import Path

import pytest
import yaml

from fslib.batch.params import ParamsError, load_params
from fslib.core.tasks import NER_LABELS
from fslib.formats.errors import DataError
from fslib.formats.ud import read_conllu
from fslib.formats.xtreme import read_tagging, read_xnli

GRID = {"task": "ner", "methods": ["ord-FS", "gradient-co-train"], "k": [1], "seeds": [1, 2],
        "languages": ["en", "de", "fr"]}
DEFAULTS = {"model": "xlm-roberta-base", "source": "xtreme"}

# (what is wrong, grid changes, defaults changes, what the error must say)
BAD = [
    ("NaN alpha", {}, {"alpha": float("nan")}, r"defaults|grids\[0\]: alpha must be a finite number of at most 1, not nan"),
    ("infinite learning rate", {}, {"learning_rate": float("inf")}, r"learning_rate must be a finite number of at most 10, not inf"),
    ("-inf weight decay", {}, {"weight_decay": float("-inf")}, r"weight_decay must be a number in \[0.0, inf\), not -inf"),
    ("absurd epochs", {}, {"epochs": 10**20}, r"epochs must be an integer of at most 1,000, not 100000000000000000000"),
    ("absurd max_length", {}, {"max_length": 10**12}, r"max_length must be an integer of at most 8,192"),
    ("absurd batch", {}, {"train_batch_size": 10**9}, r"train_batch_size must be an integer of at most 65,536"),
    ("huge learning rate", {}, {"learning_rate": 1e6}, r"learning_rate must be a finite number of at most 10, not 1000000.0"),
    ("notes a mapping", {}, {"notes": {"a": 1}}, r"notes must be a string of at most 2,000 characters, not \{'a': 1\}"),
    ("notes too long", {}, {"notes": "x" * 5000}, r"notes must be a string of at most 2,000 characters, not 'xxx"),
    ("model a number", {}, {"model": 7}, r"model must be a string"),
    ("seeds [true]", {"seeds": [True]}, {}, r"grids\[0\]\.seeds: expected positive integers, got \[True\]"),
    ("k [true]", {"k": [True]}, {}, r"grids\[0\]\.k: expected positive integers"),
    ("duplicate seeds", {"seeds": [1, 1]}, {}, r"grids\[0\]\.seeds: 1 is listed more than once"),
    ("duplicate k", {"k": [5, 5]}, {}, r"grids\[0\]\.k: 5 is listed more than once"),
    ("duplicate languages", {"languages": ["en", "de", "de"]}, {}, r"grids\[0\]\.languages: 'de' is listed more than once"),
    ("duplicate target sets", {"target_sets": [["de"], ["de"]]}, {}, r"grids\[0\]\.target_sets: \['de'\] is listed more than once"),
    ("duplicate language in a target set", {"target_sets": [["de", "de"]]}, {}, r"grids\[0\]\.target_sets: 'de' is listed"),
    ("duplicate methods", {"methods": ["ord-FS", "ord-FS"]}, {}, r"grids\[0\]\.methods: 'ord-FS' is listed more than once"),
    ("empty methods", {"methods": []}, {}, r"grids\[0\]\.methods: an empty list runs nothing"),
    ("a language that is a number", {"languages": ["en", 7]}, {}, r"grids\[0\]\.languages: expected 'all' or a list"),
    ("unknown curve_langs", {}, {"curve_langs": ["xx"]}, r"grids\[0\]: curve_langs: unknown language\(s\) xx for ner"),
    ("duplicate curve_langs", {}, {"curve_langs": ["de", "de"]}, r"grids\[0\]: curve_langs: 'de' is listed more than once"),
    ("curve_langs a string", {}, {"curve_langs": "de"}, r"grids\[0\]: curve_langs: expected 'all' or a list"),
    ("missing local model", {}, {"model": "./models/no-such-model"}, r"model: no model folder at ./models/no-such-model"),
    ("empty grids", None, {}, r"grids: expected a non-empty list of grids"),
    ("unknown treebank map", {}, {"ud_treebanks": ["en"]}, r"ud_treebanks must map language codes to treebank names"),
]


def write(path: Path, grid: dict | None, defaults: dict) -> Path:
    path.write_text(yaml.safe_dump({"defaults": {**DEFAULTS, **defaults},
                                    "grids": [] if grid is None else [{**GRID, **grid}]}))
    return path


@pytest.mark.parametrize("what, grid, defaults, message", BAD, ids=[case[0] for case in BAD])
def test_bad_values_are_refused_naming_the_file_and_field(tmp_path, what, grid, defaults, message):
    params = write(tmp_path / "grid.yaml", grid, defaults)
    with pytest.raises(ParamsError, match=message) as refused:
        load_params(params)
    assert str(refused.value).startswith(f"{params}: ")


def test_the_limits_leave_every_shipped_value_alone(tmp_path):
    params = write(tmp_path / "grid.yaml", {"target_sets": [["de"], ["fr"], ["de", "fr"]]},
                   {"alpha": 0.1, "learning_rate": 2e-5, "epochs": 3, "max_length": 512, "notes": "ablation",
                    "curve_langs": ["de"]})
    assert len(load_params(params).runs) == 2 * 2 * 3


def test_an_alias_bomb_is_refused_within_a_second(tmp_path):
    levels = ["x-a0: &a0 {v: lol}"] + [f"x-a{n}: &a{n} {{" + ", ".join(f"k{i}: *a{n - 1}" for i in range(9)) + "}"
                                       for n in range(1, 10)]
    levels.append("x-bomb: &bomb {<<: [*a9, *a8, *a7, *a6, *a5, *a4, *a3, *a2, *a1]}")
    (tmp_path / "bomb.yaml").write_text("\n".join(levels) + "\ndefaults: {model: m, notes: {<<: *bomb}}\n"
                                        "grids: [{task: ner, languages: [en, de]}]\n")
    started = time.monotonic()
    with pytest.raises(ParamsError, match=r"bomb.yaml: its anchors and aliases expand to more than 100,000 values"):
        load_params(tmp_path / "bomb.yaml")
    assert time.monotonic() - started < 1.0


def test_anchors_merged_as_the_shipped_files_do_still_load(tmp_path):
    (tmp_path / "merged.yaml").write_text("x-main: &main {task: ner, methods: [ord-FS], k: [1], languages: [en, de]}\n"
                                          "defaults: {model: m}\ngrids: [{<<: *main, seeds: [1]}, {<<: *main, "
                                          "seeds: [2]}]\n")
    assert [run.seed for run in load_params(tmp_path / "merged.yaml").runs] == [1, 2]


def test_a_parameter_file_that_is_not_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("defaults: {model: m}\n# café\ngrids: []\n".encode("latin-1"))
    with pytest.raises(ParamsError, match=rf"{path}: line 2: not UTF-8 text \(byte 0xe9\)"):
        load_params(path)


def test_data_files_that_are_not_utf8_name_the_file_and_line(tmp_path):
    tagging = tmp_path / "ner.tsv"
    tagging.write_bytes("Paris\tB-LOC\n\nSão\tB-LOC\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"{tagging}:3: not UTF-8 text \(byte 0xe3\)"):
        list(read_tagging(tagging, NER_LABELS))
    pairs = tmp_path / "xnli.tsv"
    pairs.write_bytes(b"a\tb\tneutral\n" * 3 + "é\tb\tneutral\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"{pairs}:4: not UTF-8"):
        list(read_xnli(pairs))
    conllu = tmp_path / "ud" / "UD_German-GSD" / "de_gsd-ud-test.conllu"
    conllu.parent.mkdir(parents=True)
    conllu.write_bytes("# text = Grüße\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"{conllu}:1: not UTF-8"):
        read_conllu(conllu)
