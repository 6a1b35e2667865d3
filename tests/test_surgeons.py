"""The gradient surgeons: the `Surgeon` base and its registry. An unknown surgeon or granularity is an error that
names the valid ones; a surgeon's `state_dict` goes through the epoch checkpoint; cost prices a surgeon's own
oracle passes; and a toy surgeon defined outside the kit (the README's "Extending": one module, one class) runs
through `fslib batch` end to end on the offline benchmark."""

import random
import textwrap

import pandas as pd
import pytest
import torch
import yaml

from fslib.batch.cost import DataSizes, run_cost
from fslib.batch.planning import plan, run_batch
from fslib.engine.checkpoint import capture, restore
from fslib.engine.surgeons.stochastic import StochasticGradientSurgery
from fslib.engine.surgery import FlatGradients, Surgeon, get_surgeon
from fslib.engine.training import TrainOutcome, train
from fslib.store.config import RunConfig
from fslib.store.ledger import run_status

# The README's toy: the training gradient replaced by its mean with one oracle gradient, at every application
# (alpha ignored), two oracle passes "expected" per application for the cost (to tell it from the default's).
TOY = textwrap.dedent('''
    import torch

    from fslib.engine.surgery import Surgeon


    class MeanSurgeon(Surgeon):
        name = "mean"

        @staticmethod
        def oracle_passes(alpha, oracle_languages):
            return 2.0

        def apply(self):
            train, oracle = self.oracle_gradient(self.rng.choice(self.languages))
            dot = torch.dot(train, oracle)
            self.record(dot, train.norm(), torch.dot(oracle, oracle))
            train.add_(oracle).mul_(0.5)
    ''')


@pytest.fixture
def toy_module(plugin_module):
    """`toy_surgeon` importable here and in the batch's workers and kernels (PYTHONPATH)."""
    plugin_module("toy_surgeon", TOY)
    return "toy_surgeon:MeanSurgeon"


def ner_config(**values) -> RunConfig:
    return RunConfig(**{"task": "ner", "method": "gradient-co-train", "k": 1, "seed": 1, "model": "m",
                        "languages": ["en", "de"], **values})


def test_the_default_surgeon_is_the_papers_and_leaves_the_hash_alone():
    assert get_surgeon("stochastic") is StochasticGradientSurgery and issubclass(StochasticGradientSurgery, Surgeon)
    default = ner_config()
    assert default.surgeon == "stochastic"
    assert ner_config(surgeon="stochastic").config_hash == default.config_hash  # not written into the hash
    assert ner_config(surgeon="toy_surgeon:MeanSurgeon").config_hash != default.config_hash


def test_unknown_surgeon_or_granularity_is_an_error_naming_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown surgeon 'pcgrad'; valid surgeons: stochastic, per_layer, "
                                         r"gradvac, pcgrad_languages, upgrad, or 'package.module:Class'"):
        ner_config(surgeon="pcgrad").resolved()
    with pytest.raises(ValueError, match="surgery_granularity must be one of 'step', 'micro_batch'"):
        ner_config(surgery_granularity="epoch").resolved()
    with pytest.raises(ValueError, match="not a fslib.engine.surgery.Surgeon subclass"):
        get_surgeon("fslib.engine.surgery:FlatGradients")


def test_training_refuses_an_unknown_granularity_instead_of_skipping_the_surgery():
    model = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="unknown surgery_granularity 'microbatch'; valid: step, micro_batch"):
        train(model, [], None, collator=None, seed=0, device=torch.device("cpu"), surgery_granularity="microbatch")


class CountingSurgeon(StochasticGradientSurgery):
    """A stateful variant: its counter must come back from a checkpoint, or a resumed run would differ."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.count = 0

    def apply(self):
        self.count += 1
        super().apply()

    def state_dict(self):
        return {**super().state_dict(), "count": self.count}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.count = state["count"]


def test_a_surgeons_state_goes_through_the_checkpoint():
    model = torch.nn.Linear(3, 1)
    grads = FlatGradients(list(model.parameters()))
    loss = lambda lang: model(torch.ones(1, 3)).sum()  # noqa: E731
    surgeon = CountingSurgeon(grads, ["de", "fr"], 0.5, 3, loss)
    for _ in range(5):
        surgeon()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    loop = dict(model=model, optimizer=optimizer, scheduler=scheduler,
                scaler=torch.amp.GradScaler("cpu", enabled=False), generator=torch.Generator(), surgeon=surgeon)
    state = capture(1, 10, outcome=TrainOutcome(selected_epoch=1), best_score=0.0, **loop)
    expected_draws = [surgeon.rng.random() for _ in range(3)]

    fresh = CountingSurgeon(grads, ["de", "fr"], 0.5, 99, loss)
    restore(state, outcome=TrainOutcome(selected_epoch=1), **{**loop, "surgeon": fresh})
    assert fresh.count == 5 and [fresh.rng.random() for _ in range(3)] == expected_draws
    # a checkpoint of before surgeons had a state_dict held the generator's state alone
    old = {**state, "rng": {**state["rng"], "surgery": random.Random(3).getstate()}}
    plain = StochasticGradientSurgery(grads, ["de"], 0.5, 99, loss)
    restore(old, outcome=TrainOutcome(selected_epoch=1), **{**loop, "surgeon": plain})
    assert plain.rng.random() == random.Random(3).random()


def test_cost_prices_the_surgeons_own_oracle_passes(tmp_path, toy_module):
    data = tmp_path / "download" / "panx"
    data.mkdir(parents=True)
    for name, n in {"train-en": 10, "dev-en": 4, "test-en": 3, "train-de": 6, "dev-de": 5, "test-de": 2}.items():
        (data / f"{name}.tsv").write_text("\n\n".join(["Paris\tB-LOC"] * n) + "\n")
    values = dict(model="xlm-roberta-large", data_dir=str(tmp_path / "download"), train_batch_size=4, grad_accum=2,
                  epochs=3, alpha=0.5)
    # 10 English + 1 shot = 11 examples; micro-batch 2: 6 micro-batches an epoch, 3 steps; 3 epochs: 9 steps
    default = run_cost(ner_config(**values), DataSizes())
    toy = run_cost(ner_config(surgeon=toy_module, **values), DataSizes())
    assert default.steps["co-training"] == toy.steps["co-training"] == 9
    assert default.passes["oracle passes"] == pytest.approx(0.5 * 9)  # the stochastic coin: alpha per step
    assert toy.passes["oracle passes"] == pytest.approx(2.0 * 9)  # the toy's own count


def test_a_toy_surgeon_runs_through_fslib_batch(mini_dir, tiny_model, tmp_path, toy_module):
    params = tmp_path / "toy.yaml"
    params.write_text(yaml.safe_dump({
        "defaults": {"model": str(tiny_model), "source": "xtreme", "data_dir": str(mini_dir),
                     "output_dir": str(tmp_path / "outputs"), "epochs": 1, "learning_rate": 1.0e-3,
                     "max_train_examples": 60, "max_eval_examples": 20, "eval_batch_size": 128},
        "grids": [{"task": "ner", "methods": ["gradient-co-train"], "k": [1], "seeds": [1],
                   "languages": ["en", "qa"], "config": {"surgeon": toy_module, "alpha": 0.0}}]}))
    assert run_batch([params], reports=False) == 0
    [run], _ = plan([params], prepare=False)
    assert run.config.surgeon == toy_module and run_status(run.config, lambda record: False) == "done"
    surgery = pd.read_csv(run.folder / "surgery.csv")
    # alpha 0: the stochastic surgeon would never have run an oracle pass; the toy ignores alpha
    assert (surgery["surgery_rate"] == 1.0).all() and surgery.filter(like="oracle_").to_numpy().sum() > 0
