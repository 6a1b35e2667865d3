"""The batch rule of every stage, pinned by the optimiser steps each stage really takes on the offline benchmark
(numbers worked out by hand below), and the oracle batch rules of both presets, by hand from the authors' code.

Source-training and co-training use `train_batch_size` in micro-batches of train_batch_size / grad_accum and
`epochs`; target-adapting (ord-FS, ord-FS+dev, co-FT) uses batch K, no accumulation and `target_epochs`. A stage
that took the other stage's rule takes another number of steps: co-FT with the co-training batch would take one
step per epoch over the pooled shots instead of one per K."""

from pathlib import Path

import pytest

from fslib.batch.params import load_params
from fslib.core.languages import SOURCE_LANG
from fslib.core.surgeons import oracle_batch_size
from fslib.engine.stages import Experiment
from fslib.store.config import RunConfig
from fslib.store.ledger import read_source_record

ROOT = Path(__file__).resolve().parents[1]
# 40 English sentences, K=5 shots in each of two targets; batch 16 in micro-batches of 8 (grad_accum 2);
# co-training and source-training 1 epoch, target-adapting 2
RULES = dict(k=5, languages=["en", "qa", "qb"], max_train_examples=40, max_eval_examples=10, train_batch_size=16,
             grad_accum=2, epochs=1, target_epochs=2, learning_rate=1e-3, sampler="random", progress=False,
             device="cpu", target_dev_curves=False, checkpoint_every_epoch=False)


@pytest.fixture(scope="module")
def stage_steps(mini_dir, tiny_model, tmp_path_factory):
    """Optimiser steps of each stage of one experiment (and the shot counts they were computed from)."""
    config = RunConfig(task="ner", method="co-FT", seed=1, model=str(tiny_model), data_dir=str(mini_dir),
                       output_dir=str(tmp_path_factory.mktemp("batch-rules")), **RULES)
    run = Experiment(config)
    shots = {lang: len(run.features(lang, "shots")) for lang in ("qa", "qb")}
    return {"shots": shots, "train": len(run.features(SOURCE_LANG, "train")),
            "source": read_source_record(run.source_model_dir())["steps"],
            "co-train": run.co_train(surgery=False)[1].steps,
            "co-FT": run.adapt(["qa", "qb"], select_on_dev=False)[1].steps,
            "ord-FS": run.adapt(["qa"], select_on_dev=False)[1].steps,
            "ord-FS+dev": run.adapt(["qb"], select_on_dev=True)[1].steps}


def test_the_data_is_what_the_hand_counts_assume(stage_steps):
    assert stage_steps["shots"] == {"qa": 5, "qb": 5} and stage_steps["train"] == 40  # one feature per sentence


def test_source_and_co_training_use_the_training_batch_and_accumulation(stage_steps):
    assert stage_steps["source"] == 3  # 40 examples: 5 micro-batches of 8, two per step: 3 steps, 1 epoch
    assert stage_steps["co-train"] == 4  # 40 + 2 x 5 = 50 examples: 7 micro-batches of 8: 4 steps


def test_target_adapting_uses_batch_k_without_accumulation_for_target_epochs(stage_steps):
    assert stage_steps["co-FT"] == 4  # 10 pooled shots in batches of K=5: 2 steps per epoch, 2 epochs
    assert stage_steps["ord-FS"] == stage_steps["ord-FS+dev"] == 2  # 5 shots: 1 step per epoch, 2 epochs


def preset(name: str, task: str, k: int) -> RunConfig:
    """The gradient-co-train run of a shipped preset at K=k, seed 1."""
    runs = load_params(ROOT / "params" / name / f"{task}.yaml").runs
    return next(run for run in runs if run.method == "gradient-co-train" and run.k == k and run.seed == 1).resolved()


# (preset, task, K, lang, the target's shot features) -> examples per oracle batch (None: all the target's shots,
# the same batch every time). The authors' code (docs/protocol.md): NER/POS English min(K, micro-batch 2), a target
# all its K shot features; XNLI English and targets a random min(K, 8) (a target has 3K shots); TyDiQA English K
# (`oracle_bz = few_shot`, the min with 8 commented out), a target all its shot features. The paper preset: English
# min(K, 32), a target all its shots unless they are more than 32.
ORACLE_BATCHES = [
    ("authors", "ner", 10, "en", 0, 2), ("authors", "ner", 1, "en", 0, 1), ("authors", "ner", 10, "de", 10, None),
    ("authors", "pos", 5, "en", 0, 2), ("authors", "pos", 5, "de", 5, None),
    ("authors", "xnli", 10, "en", 0, 8), ("authors", "xnli", 10, "de", 30, 8), ("authors", "xnli", 5, "de", 15, 5),
    ("authors", "tydiqa", 10, "en", 0, 10), ("authors", "tydiqa", 5, "en", 0, 5),
    ("authors", "tydiqa", 10, "sw", 14, None),
    ("paper", "ner", 10, "en", 0, 10), ("paper", "ner", 10, "de", 10, None), ("paper", "xnli", 10, "de", 30, None),
    ("paper", "tydiqa", 10, "en", 0, 10), ("paper", "tydiqa", 10, "sw", 40, 32),
]


@pytest.mark.parametrize("name, task, k, lang, shots, expected", ORACLE_BATCHES)
def test_oracle_batch_rules_of_both_presets(name, task, k, lang, shots, expected):
    assert oracle_batch_size(preset(name, task, k), lang, shots) == expected


def test_english_is_an_oracle_language_in_both_presets():
    for name in ("paper", "authors"):
        for task in ("ner", "pos", "tydiqa", "xnli"):
            assert preset(name, task, 5).oracle_include_source, (name, task)


def learning_rates_used(scheduler_first: bool, steps: int = 4) -> list[float]:
    """The learning rate each optimiser step of a toy model really uses (read as AdamW steps), linear decay."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from fslib.engine.surgery import FlatGradients
    from fslib.engine.training import StageSettings, optimisation_step, optimizer_for

    model = torch.nn.Linear(3, 1)
    model.forward = lambda x: type("Output", (), {"loss": (torch.nn.functional.linear(x, model.weight,
                                                                                      model.bias) ** 2).mean()})()
    settings = StageSettings(epochs=1, batch_size=2, learning_rate=0.4, precision="fp32",
                             scheduler_first=scheduler_first)
    optimizer = optimizer_for(model, settings)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, steps)
    used = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: used.append(opt.param_groups[0]["lr"]))
    grads = FlatGradients(list(model.parameters()))
    for _ in range(steps):
        optimisation_step(model, [{"x": torch.ones(2, 3), "langs": ["en", "en"]}], grads=grads, optimizer=optimizer,
                          scheduler=scheduler, settings=settings, device=torch.device("cpu"))
    return used


def test_scheduler_order_the_authors_ner_pos_script_steps_the_schedule_first():
    assert learning_rates_used(False) == pytest.approx([0.4, 0.3, 0.2, 0.1])  # 0.4 x (1 - t/4), t = 0..3
    assert learning_rates_used(True) == pytest.approx([0.3, 0.2, 0.1, 0.0])  # run_tag.py: one step ahead
    for task, order in {"ner": "scheduler_first", "pos": "scheduler_first", "xnli": "optimizer_first",
                        "tydiqa": "optimizer_first"}.items():
        assert preset("authors", task, 5).scheduler_order == order
        assert preset("paper", task, 5).scheduler_order == "optimizer_first"


def forwards_per_step(carry: bool) -> tuple[list[int], int, int]:
    """10 examples, micro-batches of 2 (5 per epoch), 2 per step, 2 epochs: the forward passes behind each optimiser
    step, those after the last step, and the steps `train` counts."""
    import torch
    from datasets import Dataset

    from fslib.engine.training import StageSettings, train

    model = torch.nn.Linear(3, 1)
    counts = {"forwards": 0}
    per_step = []

    def forward(x):
        counts["forwards"] += 1
        return type("Output", (), {"loss": (torch.nn.functional.linear(x, model.weight, model.bias) ** 2).mean()})()

    model.forward = forward
    data = Dataset.from_dict({"x": [[float(i), 1.0, -1.0] for i in range(10)]})
    collator = lambda rows: {"x": torch.tensor([row["x"] for row in rows]), "langs": ["en"] * len(rows)}  # noqa: E731
    settings = StageSettings(epochs=2, batch_size=4, grad_accum=2, learning_rate=0.1, precision="fp32",
                             sampler="random", carry_leftovers=carry)
    original = torch.optim.AdamW.step

    def counting_step(self, *args, **kwargs):
        per_step.append(counts["forwards"])
        counts["forwards"] = 0
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.optim.AdamW, "step", counting_step)
        outcome = train(model, data, settings, collator=collator, seed=1, device=torch.device("cpu"), progress=False)
    return per_step, counts["forwards"], outcome.steps


def test_epoch_ends_a_partial_step_or_the_authors_carry():
    assert forwards_per_step(False) == ([2, 2, 1, 2, 2, 1], 0, 6)  # ceil(5 / 2) = 3 steps per epoch
    # their loop: 5 // 2 = 2 steps per epoch; epoch 1's fifth micro-batch joins epoch 2's first step, epoch 2's
    # is computed and never applied
    assert forwards_per_step(True) == ([2, 2, 3, 2], 1, 4)
    for task in ("ner", "pos", "xnli", "tydiqa"):
        assert (preset("authors", task, 5).epoch_end, preset("paper", task, 5).epoch_end) == ("carry", "partial_step")
