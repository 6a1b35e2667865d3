"""The run configuration: validation, defaults from the paper, the hash, the run folder, files others can read."""

import os
import stat
from pathlib import Path

import pytest

from fslib.core.files import write_atomic
from fslib.store.config import RunConfig, run_dir


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
    ({"sampler": "sorted"}, "sampler must be one of 'length_grouped', 'random', not 'sorted'"),
    ({"selection": "first"}, "selection must be one of 'best', 'last'"),
    ({"select_every_steps": 0}, r"select_every_steps must be an integer >= 1 \(or null\), not 0"),
    ({"oracle_batch_size": 2.5}, "oracle_batch_size must be an integer >= 1"),
    ({"warmup_steps": -1}, "warmup_steps must be an integer >= 0"),
    ({"alpha": 2}, r"alpha must be a number in \[0.0, 1.0\], not 2"),
    ({"epochs": "two"}, "epochs must be an integer >= 1 \\(or null\\), not 'two'"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),  # zero is a value, not "the default"
    ({"learning_rate": 0}, r"learning_rate must be a number in \(0.0, inf\), not 0"),
    ({"precision": "fp8"}, "precision must be one of"),
    ({"tensorboard": "yes"}, "tensorboard must be true or false"),
    ({"task": "tydiqa", "languages": ["en", "ar"], "hold_out_source_dev": False}, "use selection: last"),
])
def test_bad_configurations_say_what_is_valid(overrides, message):
    with pytest.raises(ValueError, match=message):
        config(**overrides).resolved()


def test_hash_covers_what_is_computed_not_where():
    assert config(output_dir="a", device="cpu").config_hash == config(output_dir="b", device="cuda").config_hash
    assert config().config_hash == config(learning_rate=2e-5).config_hash  # the default, spelled out
    assert config().config_hash != config(alpha=0.5).config_hash


def test_run_folder_names_an_explicit_target_set_the_model_and_the_hash():
    plain = config(output_dir="out")
    assert run_dir(plain).as_posix() == f"out/runs/ner/gradient-co-train/k5/seed1/m-{plain.config_hash}"
    single = config(output_dir="out", target_langs=["ar"], method_label="gradient-single",
                    model="/models/owner/tiny xlmr")
    assert run_dir(single).as_posix() == f"out/runs/ner/gradient-single/k5/seed1/ar/tiny_xlmr-{single.config_hash}"
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


def test_a_mistyped_parameter_file_fails_before_anything_runs(tmp_path):
    from fslib.batch.params import ParamsError, load_params

    path = tmp_path / "grid.yaml"
    path.write_text("defaults: {model: m, alpha: 2}\ngrids:\n  - {task: ner, methods: [gradient-co-train], "
                    "k: [5], seeds: [1], languages: [en, de]}\n")
    with pytest.raises(ParamsError, match=r"grid.yaml: grids\[0\]: alpha must be a number in \[0.0, 1.0\], not 2"):
        load_params(path)


@pytest.mark.parametrize("preset", ["paper", "authors"])
@pytest.mark.parametrize("task", ["ner", "pos", "tydiqa", "xnli"])
def test_both_presets_load_and_differ_where_the_protocol_says(preset, task):
    from fslib.batch.params import load_params

    path = Path(__file__).resolve().parents[1] / "params" / preset / f"{task}.yaml"
    runs = {(r.method, r.k, r.seed): r.resolved() for r in load_params(path).runs}
    assert len(runs) == 5 + 5 * 3 * 5  # zero-shot per seed; five methods x K x seeds
    run = runs[("gradient-co-train", 5, 1)]
    micro_batch = run.train_batch_size // run.grad_accum
    if preset == "paper":
        assert (run.surgery_granularity, micro_batch, run.learning_rate, run.precision) == ("step", 32, 2e-5, "bf16")
        assert run.epochs == (60 if task == "tydiqa" else 10) and run.select_every_steps is None
    else:
        assert (run.surgery_granularity, run.sampler, run.precision) == ("micro_batch", "random", "fp32")
        assert micro_batch == (2 if task in ("ner", "pos") else 8)
        assert run.oracle_batch_size == (64 if task == "tydiqa" else micro_batch)  # TyDiQA: English's oracle is K
        assert run.alpha == (1.0 if task in ("ner", "pos") else 0.1)
        if task == "tydiqa":
            assert (run.learning_rate, run.epochs, run.warmup_steps, run.weight_decay, run.max_query_length,
                    run.hold_out_source_dev, run.selection) == (3e-5, 30, 500, 1e-4, 64, False, "last")
        else:
            assert (run.epochs, run.select_every_steps, run.selection) == (10, 100, "best")
