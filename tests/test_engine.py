"""The engine end to end on the offline benchmark with the tiny model: real learning, every method, the shared
source model, determinism, and a diverging run that leaves no rows."""

import json
import multiprocessing
import os

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, get_linear_schedule_with_warmup

import fslib.engine.stages
from fslib.core.languages import MINI_LANGS
from fslib.engine.features import IGNORE, Collator
from fslib.engine.models import load_model
from fslib.engine.runner import run_dir, run_experiment
from fslib.engine.stages import Experiment
from fslib.engine.surgeons.stochastic import StochasticGradientSurgery
from fslib.engine.surgery import FlatGradients
from fslib.engine.training import StageSettings, TrainingDiverged, autocast, optimisation_step, optimizer_for, to_device
from fslib.store.config import RunConfig
from fslib.store.results import load_results

FAST = dict(epochs=2, learning_rate=1e-3, max_train_examples=400, max_eval_examples=60, progress=False,
            eval_batch_size=128)


def config(mini_dir, tiny_model, output_dir, method, task="ner", k=5, **overrides):
    return RunConfig(task=task, method=method, k=0 if method == "zero-shot" else k, seed=1, model=str(tiny_model),
                     data_dir=str(mini_dir), languages=list(MINI_LANGS), output_dir=str(output_dir),
                     **{**FAST, **overrides})


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_tiny_model_really_learns_ner(mini_dir, tiny_model, tmp_path, device):
    """Source-training on the mini English NER data for 3 epochs (~15 s on this 2-core machine when idle; the
    time is not asserted, timing belongs to bench/). Predicting all-O scores an entity F1 of 0; a model that only
    memorised the frequent names would miss the unseen names of the dev set, which are a quarter of the
    gazetteers: 40 F1 needs context, and the trained model gets ~60. On CUDA it trains under bf16 autocast."""
    run = Experiment(config(mini_dir, tiny_model, tmp_path, "zero-shot", epochs=3, max_train_examples=None,
                     max_eval_examples=None, device=device))
    folder = run.source_model_dir()
    curve = json.loads((folder / "source_training.json").read_text())["dev_curve"]
    assert max(point["f1"] for point in curve) > 40.0


@pytest.fixture(scope="module")
def ner_runs(mini_dir, tiny_model, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("ner-runs")
    trained = []
    original = Experiment._train_source_model

    def counting(self, folder, settings):  # a spy: records each source-training, then really trains
        trained.append(folder)
        return original(self, folder, settings)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Experiment, "_train_source_model", counting)
        frames = {method: run_experiment(config(mini_dir, tiny_model, output_dir, method))
                  for method in ("zero-shot", "ord-FS", "ord-FS+dev", "co-FT", "naive-co-train",
                                 "gradient-co-train")}
    return output_dir, frames, trained


def test_every_method_writes_a_test_row_for_every_language(ner_runs):
    output_dir, frames, _ = ner_runs
    for method, frame in frames.items():
        test = frame[frame.split == "test"]
        assert sorted(test.lang) == sorted(MINI_LANGS), method
        assert test.value.between(0, 100).all() and (test.metric == "f1").all()
        assert (test.method == method).all() and test.run_id.nunique() == 1
    stored = load_results(output_dir / "runs")
    assert len(stored) == sum(len(frame) for frame in frames.values())
    assert set(stored.method) == set(frames)


def test_source_model_is_trained_once_and_shared(ner_runs):
    output_dir, frames, trained = ner_runs
    assert len(trained) == 1 and len(list((output_dir / "source_models").glob("ner-*[!k]"))) == 1
    zero_shot = frames["zero-shot"].query("split == 'test'").set_index("lang").value
    for method in ("ord-FS", "ord-FS+dev", "co-FT"):  # the source language keeps the source model's score
        assert frames[method].query("split == 'test' and lang == 'en'").value.item() == zero_shot["en"]


def test_curves_and_surgery_log(ner_runs):
    output_dir, frames, _ = ner_runs
    dev = frames["ord-FS+dev"].query("split == 'dev'")
    assert sorted(dev.lang.unique()) == sorted(MINI_LANGS[1:]) and set(dev.epoch) == {1, 2}
    co_train = frames["gradient-co-train"].query("split == 'dev'")
    assert set(co_train.lang) == set(MINI_LANGS) and set(co_train.epoch) == {1, 2}
    (surgery,) = (output_dir / "runs/ner/gradient-co-train/k5/seed1").glob("*/surgery.csv")
    surgery = pd.read_csv(surgery)
    assert list(surgery.epoch) == [1, 2] and (surgery.surgery_rate == 1.0).all()
    assert surgery.filter(like="oracle_").sum(axis=1).gt(0).all()
    assert 0 <= surgery.conflict_rate.min() and surgery.conflict_rate.max() <= 1


def test_training_tables_name_every_stage(ner_runs):
    """Each run's training.csv holds the loss of every stage it trained, the shared source-training included."""
    output_dir, _, _ = ner_runs
    runs = output_dir / "runs/ner"
    stages = {method: set(pd.read_csv(next((runs / method / ("k0" if method == "zero-shot" else "k5") /
                                            "seed1").glob("*/training.csv"))).stage)
              for method in ("zero-shot", "ord-FS", "co-FT", "gradient-co-train")}
    assert stages["zero-shot"] == {"source-training ner"}
    assert stages["ord-FS"] == {"source-training ner"} | {f"adapting to {lang}" for lang in MINI_LANGS[1:]}
    assert stages["co-FT"] == {"source-training ner", f"adapting to {'+'.join(MINI_LANGS[1:])}"}
    assert stages["gradient-co-train"] == {"gradient-co-training ner"}


def test_same_config_and_seed_give_identical_rows(mini_dir, tiny_model, tmp_path):
    # promised on CPU; CUDA kernels (the embedding backward's atomic adds) are not bitwise reproducible
    first = run_experiment(config(mini_dir, tiny_model, tmp_path / "a", "gradient-co-train", epochs=1, device="cpu"))
    again = run_experiment(config(mini_dir, tiny_model, tmp_path / "b", "gradient-co-train", epochs=1, device="cpu"))
    pd.testing.assert_frame_equal(first, again)


def test_nan_loss_stops_the_run_without_rows(mini_dir, tiny_model, tmp_path, monkeypatch):
    real_load_model = fslib.engine.stages.load_model

    def load_model_with_nan_at_third_step(*args, **kwargs):  # fault injection into a real model's loss
        model = real_load_model(*args, **kwargs)
        calls = []

        def poison(module, inputs, output):
            calls.append(1)
            if len(calls) == 3:
                output.loss = output.loss * float("nan")
            return output
        model.register_forward_hook(poison)
        return model

    monkeypatch.setattr(fslib.engine.stages, "load_model", load_model_with_nan_at_third_step)
    broken = config(mini_dir, tiny_model, tmp_path, "naive-co-train", epochs=1)
    with pytest.raises(TrainingDiverged,
                       match=r"loss is nan at naive-co-training ner: step 3 \(epoch 1\); languages in the batch: en"):
        run_experiment(broken)
    assert not (run_dir(broken) / "results.csv").exists()
    assert load_results(tmp_path).empty


def test_micro_batch_surgery_and_gradient_similarity(mini_dir, tiny_model, tmp_path):
    run = config(mini_dir, tiny_model, tmp_path, "gradient-co-train", epochs=1, grad_accum=2,
                 surgery_granularity="micro_batch", gradient_similarity=True, similarity_source_batches=3,
                 target_langs=["qa", "qc"])
    frame = run_experiment(run)
    assert set(frame.query("split == 'test'").lang) == set(MINI_LANGS)
    folder = run_dir(run)
    assert folder.parent.name == "qa+qc"
    similarity = pd.read_csv(folder / "gradient_similarity.csv").pivot(index="lang_a", columns="lang_b",
                                                                       values="cosine")
    assert sorted(similarity.index) == ["en", "qa", "qc"]
    matrix = torch.tensor(similarity.values)
    assert torch.allclose(matrix, matrix.T, atol=1e-6)
    assert torch.allclose(matrix.diagonal(), torch.ones(3, dtype=matrix.dtype), atol=1e-5)


def _source_model_in_another_process(args):
    mini_dir, tiny_model, output_dir = args
    run = Experiment(config(mini_dir, tiny_model, output_dir, "zero-shot", epochs=1))
    folder = run.source_model_dir()
    return str(folder), json.loads((folder / "source_training.json").read_text()), os.getpid()


def test_two_processes_share_one_source_training(mini_dir, tiny_model, tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_source_model_in_another_process, [(mini_dir, tiny_model, tmp_path)] * 2)
    (folder_a, record_a, pid_a), (folder_b, record_b, pid_b) = results
    assert folder_a == folder_b and record_a == record_b
    trainer_pid = int(record_a["trained_by"].rsplit(":", 1)[1])
    assert [pid_a, pid_b].count(trainer_pid) == 1  # one process trained, the other waited and reused it
    assert not list((tmp_path / "source_models").glob("*.partial"))


@pytest.mark.cuda
def test_bf16_autocast_step_on_cuda_keeps_fp32_weights_and_gradients(tiny_model):
    """On CUDA the forward runs in bf16 while the weights, the flat gradient buffer and AdamW stay fp32 (what
    the memory figures of bench/ assume), and a gradient-co-training step with surgery changes the weights."""
    device = torch.device("cuda")
    model = load_model(str(tiny_model), "ner").to(device).train()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    collator = Collator("ner", tokenizer)
    rows = [{"input_ids": [0, 5 + i, 6 + i, 2], "attention_mask": [1] * 4, "labels": [IGNORE, 1, 0, IGNORE],
             "lang": lang} for i, lang in enumerate(["en", "en", "qa", "qb"])]
    batch = collator(rows)
    settings = StageSettings(epochs=1, batch_size=4, learning_rate=1e-3, precision="bf16")
    grads = FlatGradients(list(model.parameters()))
    optimizer = optimizer_for(model, settings)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, 10)

    def oracle_loss(lang):
        inputs, _ = to_device(collator([row for row in rows if row["lang"] == lang]), device)
        with autocast(device, "bf16"):
            return model(**inputs).loss

    surgeon = StochasticGradientSurgery(grads, ["qa", "qb", "en"], 1.0, 0, oracle_loss)
    with autocast(device, "bf16"):
        assert model(**to_device(dict(batch), device)[0]).logits.dtype == torch.bfloat16
    before = [p.detach().clone() for p in model.parameters()]
    loss = optimisation_step(model, [dict(batch)], grads=grads, optimizer=optimizer, scheduler=scheduler,
                             settings=settings, device=device, surgeon=surgeon)
    assert torch.isfinite(loss) and surgeon.surgeries == 1
    assert grads.buffer.dtype == torch.float32 and grads.buffer.is_cuda
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
