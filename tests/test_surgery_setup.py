"""How a gradient-co-training run sets up the surgery, through `run_experiment` on the tiny model: which languages
are oracles, how big their batches are, how often the coin says yes (read back from surgery.csv), and that the
micro-batch granularity applies the surgery after every micro-batch."""

import pandas as pd
import pytest
import torch
from transformers.modeling_utils import PreTrainedModel

from fslib.engine.runner import run_dir, run_experiment
from fslib.engine.surgeons.stochastic import StochasticGradientSurgery
from fslib.store.config import RunConfig

LANGS = ["en", "qa", "qc"]


def config(mini_dir, tiny_model, output_dir, **overrides):
    values = dict(task="ner", method="gradient-co-train", k=5, seed=1, model=str(tiny_model), data_dir=str(mini_dir),
                  languages=LANGS, output_dir=str(output_dir), epochs=1, learning_rate=1e-3, max_train_examples=60,
                  max_eval_examples=10, eval_batch_size=64, target_dev_curves=False, progress=False, device="cpu")
    return RunConfig(**{**values, **overrides})


def spied_run(config: RunConfig) -> dict:
    """Run `config` with spies on the surgery (its languages and α, and which forward passes are oracle passes)
    and on every forward pass with labels (training and oracle batches: their languages and sizes)."""
    seen = {"surgeons": [], "forwards": []}
    oracle_lang = []  # the oracle language while an oracle forward pass runs
    original_init, original_call = StochasticGradientSurgery.__init__, PreTrainedModel.__call__

    def init(self, grads, oracle_languages, alpha, seed, oracle_loss, **kwargs):
        def spying_oracle_loss(lang):
            oracle_lang.append(lang)
            try:
                return oracle_loss(lang)
            finally:
                oracle_lang.pop()
        seen["surgeons"].append({"languages": list(oracle_languages), "alpha": alpha})
        original_init(self, grads, oracle_languages, alpha, seed, spying_oracle_loss, **kwargs)

    def call(self, *args, **kwargs):
        if "labels" in kwargs:  # the task model's own forward (not its encoder's), with labels: training
            seen["forwards"].append({"oracle": oracle_lang[-1] if oracle_lang else None,
                                     "input_ids": kwargs["input_ids"].clone()})
        return original_call(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StochasticGradientSurgery, "__init__", init)
        patch.setattr(PreTrainedModel, "__call__", call)
        run_experiment(config)
    seen["surgery"] = pd.read_csv(run_dir(config) / "surgery.csv")
    return seen


@pytest.fixture(scope="module")
def step_run(mini_dir, tiny_model, tmp_path_factory):
    """α = 1, English an oracle too, a batch of 8 > K = 5, one surgery per optimiser step."""
    return spied_run(config(mini_dir, tiny_model, tmp_path_factory.mktemp("step"), alpha=1.0, train_batch_size=8))


@pytest.fixture(scope="module")
def micro_batch_run(mini_dir, tiny_model, tmp_path_factory):
    """α = 0.5, no English oracle, micro-batches of 2 (batch 4 = 2 x 2 < K = 5), surgery after each."""
    return spied_run(config(mini_dir, tiny_model, tmp_path_factory.mktemp("micro"), alpha=0.5, train_batch_size=4,
                            grad_accum=2, surgery_granularity="micro_batch", oracle_include_source=False))


def oracle_batches(seen, lang):
    return [f["input_ids"] for f in seen["forwards"] if f["oracle"] == lang]


def training_batches(seen):
    return [f["input_ids"] for f in seen["forwards"] if f["oracle"] is None]


def test_english_is_an_oracle_unless_switched_off(step_run, micro_batch_run):
    assert [s["languages"] for s in step_run["surgeons"]] == [["qa", "qc", "en"]]
    assert [s["languages"] for s in micro_batch_run["surgeons"]] == [["qa", "qc"]]
    assert sorted(step_run["surgery"].filter(like="oracle_").columns) == ["oracle_en", "oracle_qa", "oracle_qc"]
    assert sorted(micro_batch_run["surgery"].filter(like="oracle_").columns) == ["oracle_qa", "oracle_qc"]
    assert (step_run["surgery"][["oracle_en", "oracle_qa", "oracle_qc"]] > 0).all(axis=None)
    assert not oracle_batches(micro_batch_run, "en")


def test_alpha_reaches_the_surgeon(step_run, micro_batch_run):
    assert [s["alpha"] for s in step_run["surgeons"] + micro_batch_run["surgeons"]] == [1.0, 0.5]


def test_oracle_batch_sizes(step_run, micro_batch_run):
    # English: a random batch of min(K, train batch) source examples
    assert {len(b) for b in oracle_batches(step_run, "en")} == {5}
    assert {len(b) for b in oracle_batches(micro_batch_run, "qa")} == {4}
    # a target with no more shots than a batch: all its K shots, the same batch every time
    for lang in ("qa", "qc"):
        batches = oracle_batches(step_run, lang)
        assert len(batches) > 1 and all(torch.equal(b, batches[0]) for b in batches) and len(batches[0]) == 5
    # more shots than a batch: a random batch of them each time
    drawn = oracle_batches(micro_batch_run, "qa") + oracle_batches(micro_batch_run, "qc")
    assert any(not torch.equal(a, b) for a, b in zip(drawn, drawn[1:]) if a.shape == b.shape)


def test_surgery_csv_counts_one_surgery_per_step_at_alpha_one(step_run):
    surgery = step_run["surgery"]
    steps = len(training_batches(step_run))  # grad_accum 1: one micro-batch per step
    assert list(surgery.epoch) == [1] and surgery.step.item() == steps
    assert surgery.surgery_rate.item() == 1.0
    oracle_passes = sum(len(oracle_batches(step_run, lang)) for lang in ("en", "qa", "qc"))
    assert surgery.filter(like="oracle_").sum(axis=1).item() == oracle_passes == steps
    assert 0.0 <= surgery.conflict_rate.item() <= 1.0 and -1.0 <= surgery.mean_cosine.item() <= 1.0


def test_micro_batch_surgery_flips_the_coin_after_every_micro_batch(micro_batch_run):
    surgery = micro_batch_run["surgery"]
    micro_batches = len(training_batches(micro_batch_run))
    assert surgery.step.item() == -(-micro_batches // 2)  # two micro-batches per step
    oracle_passes = len(oracle_batches(micro_batch_run, "qa")) + len(oracle_batches(micro_batch_run, "qc"))
    assert surgery.filter(like="oracle_").sum(axis=1).item() == oracle_passes
    # the rate is over micro-batches, and a seeded coin at α = 0.5 lands near one half
    assert surgery.surgery_rate.item() == pytest.approx(oracle_passes / micro_batches)
    assert 0.25 < surgery.surgery_rate.item() < 0.75
