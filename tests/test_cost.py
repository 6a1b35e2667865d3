"""The cost model of `fslib batch --dry-run`: counts checked by hand on a small grid whose data files we write."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fslib.batch.cost import DataSizes, describe_cost, grid_cost, run_cost, shape_of, source_training_cost
from fslib.cli import main
from fslib.store.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent


def write_panx(path: Path, sentences: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = ["Jan\tB-PER\nlives\tO\nhere\tO" if i % 2 else "Paris\tB-LOC" for i in range(sentences)]
    path.write_text("\n\n".join(blocks) + "\n\n\n")  # extra blank lines at the end count for nothing


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "download"
    for name, n in {"train-en": 10, "dev-en": 4, "test-en": 3, "train-de": 6, "dev-de": 5, "test-de": 2,
                    "train-fr": 6, "dev-fr": 7, "test-fr": 1}.items():
        write_panx(root / "panx" / f"{name}.tsv", n)
    return root


def config(data_dir: Path, method: str = "gradient-co-train", **values) -> RunConfig:
    values = {"task": "ner", "method": method, "k": 0 if method == "zero-shot" else 2, "seed": 1,
              "model": "xlm-roberta-large", "data_dir": str(data_dir), "languages": ["en", "de", "fr"],
              "train_batch_size": 4, "grad_accum": 2, "epochs": 3, **values}
    return RunConfig(**values)


def test_sentences_counted_from_the_files(data_dir):
    sizes = DataSizes()
    c = config(data_dir)
    assert [sizes.examples(c, "en", split) for split in ("train", "dev", "test")] == [10, 4, 3]
    assert sizes.examples(config(data_dir, max_eval_examples=2), "de", "dev") == 2  # caps apply
    assert not sizes.estimated


def test_co_training_counts_by_hand(data_dir):
    # 10 English + 2 shots x 2 targets = 14 examples; micro-batch 4 / 2 = 2: 7 micro-batches an epoch, grouped by
    # 2 into 4 optimiser steps (the last step has one); 3 epochs: 12 steps, 21 micro-batches
    c = config(data_dir, alpha=1.0, surgery_granularity="step")
    cost = run_cost(c, DataSizes())
    assert cost.steps["co-training"] == 12 and cost.passes["co-training"] == 21
    assert cost.passes["oracle passes"] == 12  # alpha 1: one oracle pass per step
    micro = run_cost(config(data_dir, alpha=1.0, surgery_granularity="micro_batch"), DataSizes())
    assert micro.passes["oracle passes"] == 21  # one per micro-batch
    coin = run_cost(config(data_dir, alpha=0.1, surgery_granularity="micro_batch"), DataSizes())
    assert coin.passes["oracle passes"] == pytest.approx(2.1)  # expected: alpha x applications
    assert run_cost(config(data_dir, method="naive-co-train"), DataSizes()).passes["oracle passes"] == 0
    # dev curves of en, de and fr (4 + 5 + 7 sentences) after each of 3 epochs; test: 3 + 2 + 1
    assert cost.evaluations["evaluation during training"] == 3
    assert cost.evaluated["evaluation during training"] == 3 * 16
    assert cost.evaluated["test evaluation"] == 6
    # epoch_end: carry (the authors'): 7 // 2 = 3 steps an epoch, the leftover micro-batch carried: 9 steps
    carried = run_cost(config(data_dir, alpha=1.0, surgery_granularity="step", epoch_end="carry"), DataSizes())
    assert carried.steps["co-training"] == 9 and carried.passes["co-training"] == 21


def test_evaluation_every_n_steps(data_dir):
    # 12 steps, every 5 steps and at the end: steps 5, 10, 12; only English (no target curves)
    cost = run_cost(config(data_dir, select_every_steps=5, target_dev_curves=False), DataSizes())
    assert cost.evaluations["evaluation during training"] == 3
    assert cost.evaluated["evaluation during training"] == 3 * 4
    # every 4 steps: 4, 8, 12 (the end is one of them)
    assert run_cost(config(data_dir, select_every_steps=4), DataSizes()).evaluations[
        "evaluation during training"] == 3


def test_two_step_methods_and_shared_source_models(data_dir):
    runs = [config(data_dir, method=m) for m in ("zero-shot", "ord-FS", "ord-FS+dev", "co-FT")]
    runs.append(config(data_dir, method="ord-FS", seed=2))
    grid = grid_cost(runs, DataSizes())
    assert grid.source_models == 2  # seeds 1 and 2; every method of seed 1 shares one
    # source-training: 10 sentences, 5 micro-batches, 3 steps an epoch, 3 epochs; the English dev set each epoch
    source = source_training_cost(runs[0], DataSizes())
    assert source.steps["source-training"] == 9 and source.evaluated["evaluation during training"] == 3 * 4
    # adapting at batch K=2 for 3 epochs: ord-FS 1 step per target per epoch (x2 targets), co-FT 2 per epoch
    assert run_cost(runs[1], DataSizes()).steps["target-adapting"] == 6
    assert run_cost(runs[3], DataSizes()).steps["target-adapting"] == 6
    dev = run_cost(runs[2], DataSizes())  # ord-FS+dev: each target's dev set after each epoch
    assert dev.evaluations["evaluation during training"] == 6
    assert dev.evaluated["evaluation during training"] == 3 * (5 + 7)
    assert grid.total.steps["source-training"] == 18
    assert grid.total.steps["target-adapting"] == 6 + 6 + 6 + 6


def test_tydiqa_dev_is_a_tenth_of_train_unless_not_held_out(tmp_path):
    path = tmp_path / "tydiqa" / "tydiqa-goldp-v1.1-train" / "tydiqa.goldp.en.train.json"
    path.parent.mkdir(parents=True)
    qas = [{"id": str(i), "question": "q", "answers": [{"text": "a", "answer_start": 0}]} for i in range(20)]
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "a", "qas": qas}]}]}))
    c = RunConfig(task="tydiqa", method="zero-shot", k=0, seed=1, model="xlm-roberta-base", data_dir=str(tmp_path))
    sizes = DataSizes()
    assert (sizes.examples(c, "en", "train"), sizes.examples(c, "en", "dev")) == (18, 2)
    whole = RunConfig(**{**c.to_dict(), "hold_out_source_dev": False, "selection": "last"})
    assert sizes.examples(whole, "en", "train") == 20
    assert source_training_cost(whole, sizes).evaluations["evaluation during training"] == 0


def test_hours_only_for_timed_shapes(data_dir, tmp_path):
    assert shape_of("xlm-roberta-large").name == "xlm-roberta-large"
    assert shape_of("/models/xlm-roberta-base").name == "xlm-roberta-base"
    assert shape_of("outputs/models/tiny-xlmr") is None
    timed = grid_cost([config(data_dir)], DataSizes())
    assert timed.total.timed and sum(timed.total.seconds.values()) > 0
    # bf16: false costs more than bf16 autocast (fp32 matmuls)
    fp32 = grid_cost([config(data_dir, precision="fp32")], DataSizes())
    assert sum(fp32.total.seconds.values()) > sum(timed.total.seconds.values())
    untimed = grid_cost([config(data_dir, model=str(tmp_path / "tiny"))], DataSizes())
    assert not untimed.total.timed and "no time estimate" in describe_cost(untimed)


def test_missing_files_fall_back_to_xtreme_sizes(tmp_path):
    c = RunConfig(task="ner", method="naive-co-train", k=5, seed=1, model="xlm-roberta-large",
                  data_dir=str(tmp_path), languages=["en", "de"])
    sizes = DataSizes()
    assert sizes.examples(c, "en", "train") == 20_000 and sizes.estimated == {"ner"}
    # 20,005 examples at batch 32: 626 steps an epoch, the paper's 10 epochs
    assert run_cost(c, sizes).steps["co-training"] == 6260
    assert "published sizes" in describe_cost(grid_cost([c], DataSizes()))


def test_dry_run_prints_the_cost_and_compares_presets(data_dir, tmp_path, capsys):
    grid = {"task": "ner", "methods": ["naive-co-train", "gradient-co-train"], "k": [2], "seeds": [1],
            "languages": ["en", "de"]}
    common = {"model": "xlm-roberta-large", "data_dir": str(data_dir), "output_dir": str(tmp_path / "out"),
              "train_batch_size": 4, "epochs": 3}
    for preset, extra in {"paper": {}, "authors": {"grad_accum": 2, "surgery_granularity": "micro_batch",
                                                    "select_every_steps": 2}}.items():
        (tmp_path / preset).mkdir()
        (tmp_path / preset / "ner.yaml").write_text(yaml.safe_dump({"defaults": {**common, **extra},
                                                                    "grids": [grid]}))
    assert main(["batch", str(tmp_path / "authors" / "ner.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "estimated cost of the grid: 2 runs + 0 source models" in out
    assert "GPU-hours on one H100" in out
    # 10 English + 2 shots: paper micro-batch 4 -> 3 steps an epoch, 9 in all; authors micro-batch 2 -> 6
    # micro-batches grouped by 2 into 3 steps an epoch: 2 oracle passes per step against 1
    assert "oracle passes per optimiser step (gradient-co-train): 2.00 against 1.00 (2.0x)" in out
    # authors: every 2 steps and the end of 9: 2, 4, 6, 8, 9 = 5 evaluations; paper: 3 epochs
    assert "dev evaluations per co-training run: 5.00 against 3.00" in out


def test_planning_imports_no_torch():
    code = "import sys, fslib.batch.cost; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
