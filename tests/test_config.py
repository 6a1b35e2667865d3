"""The run configuration: validation, defaults from the paper, the hash, the run folder, files others can read."""

import os
import stat

import pytest

from fslib.config import RunConfig, run_dir
from fslib.files import write_atomic


def config(**overrides):
    return RunConfig(**{"task": "ner", "method": "gradient-co-train", "k": 5, "seed": 1, "model": "m",
                        "languages": ["en", "de", "ar"], **overrides})


def test_paper_defaults_fill_what_is_left_out():
    tydiqa = RunConfig(task="tydiqa", method="ord-FS", k=5, seed=1, model="m").resolved()
    assert (tydiqa.learning_rate, tydiqa.epochs, tydiqa.max_length, tydiqa.alpha, tydiqa.target_batch_size) == \
        (2e-5, 60, 384, 0.1, 5)  # the paper's text: 2e-5 and 60 epochs for every task and stage
    assert config().resolved().alpha == 1.0 and config(alpha=0.0).resolved().alpha == 0.0
    assert tydiqa.languages[0] == "en" and len(tydiqa.languages) == 9


@pytest.mark.parametrize("overrides, message", [
    ({"method": "ord-fs"}, "unknown method 'ord-fs'; valid methods: zero-shot, ord-FS"),
    ({"method": "zero-shot"}, "zero-shot has k=0"),
    ({"target_langs": []}, "target_langs must name at least one target language"),
    ({"target_langs": ["fr"]}, r"target_langs \['fr'\] must be evaluated languages"),
    ({"train_batch_size": 32, "grad_accum": 3}, "not a multiple of grad_accum"),
    ({"sampler": "sorted"}, "sampler must be 'length_grouped' or 'random'"),
    ({"selection": "first"}, "selection must be 'best' or 'last'"),
    ({"select_every_steps": 0}, "select_every_steps must be a positive integer"),
    ({"oracle_batch_size": 2.5}, "oracle_batch_size must be a positive integer"),
    ({"warmup_steps": -1}, "warmup_steps must be a non-negative integer"),
    ({"task": "tydiqa", "languages": ["en", "ar"], "hold_out_source_dev": False}, "use selection: last"),
])
def test_bad_configurations_say_what_is_valid(overrides, message):
    with pytest.raises(ValueError, match=message):
        config(**overrides).resolved()


def test_hash_covers_what_is_computed_not_where():
    assert config(output_dir="a", device="cpu").config_hash == config(output_dir="b", device="cuda").config_hash
    assert config().config_hash == config(learning_rate=2e-5).config_hash  # the default, spelled out
    assert config().config_hash != config(alpha=0.5).config_hash


def test_run_folder_names_an_explicit_target_set():
    assert run_dir(config(output_dir="out")).as_posix() == "out/runs/ner/gradient-co-train/k5/seed1"
    single = config(output_dir="out", target_langs=["ar"], method_label="gradient-single")
    assert run_dir(single).as_posix() == "out/runs/ner/gradient-single/k5/seed1/ar"
    assert single.targets == ["ar"] and config().targets == ["de", "ar"]


def test_config_round_trips_through_json(tmp_path):
    original = config(target_langs=["de"], notes="x")
    original.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json") == original


def test_atomic_files_are_readable_by_others(tmp_path):
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "rows.csv", lambda temporary: open(temporary, "w").write("a\n"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "rows.csv").stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".rows.csv.*"))
