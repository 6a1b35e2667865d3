"""The training loop itself (`fslib.engine.training.train`) on a toy model, step by step: which weights "best" and
"last" keep, the steps that gradient accumulation makes, the learning-rate schedule, which parameters decay, the loss
that is accumulated, and where the surgery is applied. Every number is checked against one computed here."""

import math
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset

from fslib.engine.surgeons.stochastic import StochasticGradientSurgery
from fslib.engine.training import StageSettings, train

CPU = torch.device("cpu")


class Toy(torch.nn.Module):
    """Mean-pooled embeddings, two LayerNorms and a linear head: a bag-of-words classifier that learns within a
    few steps. Every forward pass in training mode is recorded (the micro-batches `train` fed it)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(20, 8)
        self.LayerNorm = torch.nn.LayerNorm(8)  # the Hugging Face name
        self.hidden = torch.nn.Linear(8, 8)
        self.out_layer_norm = torch.nn.LayerNorm(8)  # the other spelling
        self.head = torch.nn.Linear(8, 2)
        self.seen: list[torch.Tensor] = []

    def forward(self, input_ids, labels, attention_mask):
        if self.training:
            self.seen.append(input_ids)
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.LayerNorm(self.embed(input_ids)) * mask).sum(1) / mask.sum(1)
        logits = self.head(self.out_layer_norm(torch.tanh(self.hidden(pooled))))
        return SimpleNamespace(loss=torch.nn.functional.cross_entropy(logits, labels), logits=logits)


def toy_features(n: int = 10) -> Dataset:
    """n sentences of 2 to 5 token ids; the label is whether token 1 occurs."""
    generator = torch.Generator().manual_seed(1)
    rows = []
    for i in range(n):
        ids = torch.randint(1, 20, (2 + i % 4,), generator=generator).tolist()
        rows.append({"input_ids": ids, "labels": int(1 in ids) if i % 3 else 1 - int(1 in ids),
                     "lang": "en" if i % 2 else "xx"})
    return Dataset.from_list(rows)


def collate(rows: list[dict]) -> dict:
    width = max(len(row["input_ids"]) for row in rows)
    return {"input_ids": torch.tensor([row["input_ids"] + [0] * (width - len(row["input_ids"])) for row in rows]),
            "attention_mask": torch.tensor([[1] * len(row["input_ids"]) + [0] * (width - len(row["input_ids"]))
                                            for row in rows]),
            "labels": torch.tensor([row["labels"] for row in rows]),
            "langs": [row["lang"] for row in rows]}


def settings(**overrides) -> StageSettings:
    values = dict(epochs=3, batch_size=4, learning_rate=0.05, precision="fp32")
    return StageSettings(**{**values, **overrides})


@pytest.fixture
def optimiser_steps(monkeypatch):
    """A spy on AdamW.step: before each step, the learning rate of every group, the weights and their gradients
    (after clipping), and the micro-batches the model saw since the previous step."""
    steps = []
    original = torch.optim.AdamW.step

    def spying_step(self, *args, **kwargs):
        model = self.spied_model
        steps.append({"lrs": [group["lr"] for group in self.param_groups], "optimizer": self,
                      "weights": {n: p.detach().clone() for n, p in model.named_parameters()},
                      "grads": {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None},
                      "micro_batches": list(model.seen)})
        model.seen.clear()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spying_step)
    return steps


def train_toy(select="last", scores=None, spy=False, surgery=None, granularity="step", n=10, seed=0, **overrides):
    """Train a fresh Toy; `scores[epoch - 1]` is what the epoch-end callback returns. Returns the model, the
    outcome and a copy of the weights at the end of every epoch."""
    model = Toy()
    snapshots = {}
    if spy:
        original_init = torch.optim.AdamW.__init__

        def remember_model(self, *args, **kwargs):
            original_init(self, *args, **kwargs)
            self.spied_model = model
        torch.optim.AdamW.__init__ = remember_model
    try:
        def on_evaluate(model, epoch, step):
            snapshots[epoch] = {name: t.detach().clone() for name, t in model.state_dict().items()}
            return scores[epoch - 1] if scores else None
        outcome = train(model, toy_features(n), settings(**overrides), collator=collate, seed=seed, device=CPU,
                        on_evaluate=on_evaluate, select=select, surgery=surgery(model) if surgery else None,
                        surgery_granularity=granularity, progress=False)
    finally:
        if spy:
            torch.optim.AdamW.__init__ = original_init
    return model, outcome, snapshots


def same_weights(model, state) -> bool:
    return all(torch.equal(tensor, state[name]) for name, tensor in model.state_dict().items())


# ---- which weights the model holds at the end --------------------------------------------------------------
def test_epochs_really_change_the_weights():
    _, _, snapshots = train_toy(epochs=3)
    assert not any(torch.equal(snapshots[1][name], snapshots[3][name]) for name in snapshots[1])


def test_best_restores_exactly_the_weights_of_the_selected_epoch():
    model, outcome, snapshots = train_toy(select="best", scores=[0.2, 0.9, 0.5], epochs=3)
    assert outcome.selected_epoch == 2
    assert same_weights(model, snapshots[2]) and not same_weights(model, snapshots[3])


def test_last_keeps_the_last_epoch_whatever_the_scores():
    model, outcome, snapshots = train_toy(select="last", scores=[0.2, 0.9, 0.5], epochs=3)
    assert outcome.selected_epoch == 3 and same_weights(model, snapshots[3])


def test_a_tie_keeps_the_earlier_epoch():
    model, outcome, snapshots = train_toy(select="best", scores=[0.4, 0.7, 0.7, 0.1], epochs=4)
    assert outcome.selected_epoch == 2 and same_weights(model, snapshots[2])


def test_best_of_a_first_epoch_and_without_scores():
    model, outcome, snapshots = train_toy(select="best", scores=[0.9, 0.1], epochs=2)
    assert outcome.selected_epoch == 1 and same_weights(model, snapshots[1])
    # a callback that scores nothing selects nothing: the last weights stay
    model, outcome, snapshots = train_toy(select="best", scores=None, epochs=2)
    assert outcome.selected_epoch == 2 and same_weights(model, snapshots[2])


def test_unknown_selection_is_refused():
    with pytest.raises(ValueError, match="select must be 'last' or 'best', not 'first'"):
        train_toy(select="first")


# ---- steps, schedule, decay, accumulation --------------------------------------------------------------------
@pytest.mark.parametrize("batch_size, grad_accum, micro_sizes, steps_per_epoch", [
    (4, 1, [4, 4, 2], 3),  # 10 examples: 3 micro-batches, one step each
    (4, 2, [2, 2, 2, 2, 2], 3),  # 5 micro-batches of 2, grouped 2 + 2 + 1
    (6, 3, [2, 2, 2, 2, 2], 2),  # 3 + 2
])
def test_steps_per_epoch_with_gradient_accumulation(optimiser_steps, batch_size, grad_accum, micro_sizes,
                                                    steps_per_epoch):
    model, outcome, _ = train_toy(spy=True, epochs=2, batch_size=batch_size, grad_accum=grad_accum)
    assert outcome.steps == len(optimiser_steps) == 2 * steps_per_epoch
    epoch = optimiser_steps[:steps_per_epoch]
    assert [len(group["micro_batches"]) for group in epoch] == \
        [min(grad_accum, len(micro_sizes) - i * grad_accum) for i in range(steps_per_epoch)]
    assert sorted(len(b) for group in epoch for b in group["micro_batches"]) == sorted(micro_sizes)


def test_warmup_then_linear_decay_to_zero(optimiser_steps):
    # 10 examples, batch 4: 3 steps per epoch, 12 in all; warm-up over int(0.25 * 12) = 3 steps
    train_toy(spy=True, epochs=4, learning_rate=0.1, warmup_ratio=0.25)
    expected = [0.1 * i / 3 for i in range(3)] + [0.1 * (12 - i) / 9 for i in range(3, 12)]
    lrs = [step["lrs"][0] for step in optimiser_steps]
    assert lrs == pytest.approx(expected, abs=1e-12)
    assert all(len(set(step["lrs"])) == 1 for step in optimiser_steps)  # one schedule for both groups


def test_no_schedule_warmup_by_default(optimiser_steps):
    train_toy(spy=True, epochs=1, learning_rate=0.1)  # 3 steps, linear decay from the first
    assert [step["lrs"][0] for step in optimiser_steps] == pytest.approx([0.1, 0.2 / 3, 0.1 / 3])


def test_no_weight_decay_on_biases_and_layer_norms(optimiser_steps):
    model, _, _ = train_toy(spy=True, epochs=1, weight_decay=0.3, adam_epsilon=1e-6)
    optimizer = optimiser_steps[0]["optimizer"]
    names = {id(p): name for name, p in model.named_parameters()}
    decay = {group["weight_decay"]: sorted(names[id(p)] for p in group["params"]) for group in optimizer.param_groups}
    assert decay == {0.3: ["embed.weight", "head.weight", "hidden.weight"],
                     0.0: ["LayerNorm.bias", "LayerNorm.weight", "head.bias", "hidden.bias", "out_layer_norm.bias",
                           "out_layer_norm.weight"]}
    assert all(group["eps"] == 1e-6 for group in optimizer.param_groups)


def test_frozen_parameters_are_not_optimised(optimiser_steps):
    model = Toy()
    model.embed.weight.requires_grad_(False)
    original_init = torch.optim.AdamW.__init__
    optimizers = []

    def remember(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        optimizers.append(self)
        self.spied_model = model
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.optim.AdamW, "__init__", remember)
        before = model.embed.weight.detach().clone()
        train(model, toy_features(), settings(epochs=1), collator=collate, seed=0, device=CPU, progress=False)
    assert all(p is not model.embed.weight for group in optimizers[0].param_groups for p in group["params"])
    assert torch.equal(model.embed.weight, before)


@pytest.mark.parametrize("grad_accum", [1, 2, 3])
def test_the_gradient_of_a_step_is_the_mean_over_its_micro_batches(optimiser_steps, grad_accum):
    """The loss of every micro-batch is divided by the number of micro-batches of its step (the last step of an
    epoch may have fewer): recompute each step's gradient from the weights and micro-batches it saw."""
    train_toy(spy=True, epochs=1, batch_size=2 * grad_accum, grad_accum=grad_accum, max_grad_norm=1e9)
    labels_of = {tuple(row["input_ids"]): row["labels"] for row in toy_features().to_list()}
    for step in optimiser_steps:
        replica = Toy()
        replica.load_state_dict(step["weights"])
        losses = []
        for input_ids in step["micro_batches"]:
            mask = (input_ids != 0).long()
            labels = torch.tensor([labels_of[tuple(row[row != 0].tolist())] for row in input_ids])
            losses.append(replica(input_ids=input_ids, labels=labels, attention_mask=mask).loss)
        torch.stack(losses).mean().backward()
        for name, parameter in replica.named_parameters():
            assert torch.allclose(step["grads"][name], parameter.grad, atol=1e-7, rtol=1e-5), name


def test_gradients_are_clipped_to_max_grad_norm(optimiser_steps):
    train_toy(spy=True, epochs=1, max_grad_norm=1e-3)
    for step in optimiser_steps:
        norm = torch.cat([g.flatten() for g in step["grads"].values()]).norm()
        assert norm == pytest.approx(1e-3, rel=1e-4)


def test_the_data_order_is_the_seed_s_alone():
    """The seed fixes the order of the micro-batches (whatever else used the global RNG); another seed, or the
    next epoch, shuffles them differently."""
    def order(seed, epochs=2, disturb=False):
        model = Toy()
        if disturb:
            torch.manual_seed(1234)
        train(model, toy_features(40), settings(epochs=epochs), collator=collate, seed=seed, device=CPU,
              progress=False)
        return [b[:, 0].tolist() for b in model.seen]  # each micro-batch by its first tokens
    first = order(0)
    assert first == order(0, disturb=True)
    assert first != order(1)
    epoch_1, epoch_2 = first[:10], first[10:]
    assert epoch_1 != epoch_2 and sorted(map(sorted, epoch_1)) != sorted(map(sorted, epoch_2))


def test_same_seed_gives_the_same_weights():
    first, _, _ = train_toy(epochs=2)
    again, _, _ = train_toy(epochs=2)
    assert same_weights(first, again.state_dict())


def test_a_non_finite_loss_names_the_step_and_languages():
    from fslib.engine.training import TrainingDiverged

    class Exploding(Toy):
        def forward(self, **inputs):
            output = super().forward(**inputs)
            if len(self.seen) == 4:
                output.loss = output.loss * float("inf")
            return output

    with pytest.raises(TrainingDiverged, match=r"loss is inf at toy: step 4 \(epoch 2\); languages in the batch: "):
        train(Exploding(), toy_features(), settings(epochs=2), collator=collate, seed=0, device=CPU,
              description="toy", progress=False)


def test_the_loop_reads_the_losses_once_per_log_interval(monkeypatch):
    """On a GPU every read of a device value waits for it: the loop reads the step losses (and checks them) once
    every `log_every` steps, not at every step. Counted: the reads made in fslib/engine/training.py itself."""
    import sys

    import fslib.engine.training as training

    reads = []
    for name in ("item", "tolist", "__float__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            if sys._getframe(1).f_code.co_filename == training.__file__:
                reads.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counting)
    outcome = train(Toy(), toy_features(40), settings(epochs=2), collator=collate, seed=0, device=CPU,
                    progress=False, log_every=5)
    assert [entry["step"] for entry in outcome.training_log if entry["kind"] == "interval"] == [5, 10, 15, 20]
    assert reads == ["tolist"] * 4  # 20 steps, one read per interval of 5
    assert all(math.isfinite(entry["loss"]) for entry in outcome.training_log)

# ---- where the surgery is applied ---------------------------------------------------------------------------
def always_conflicting_surgery(alpha=1.0):
    """A surgery factory whose oracle gradient is minus the gradient of a fixed batch: it conflicts with the
    training gradient as a rule, so every application projects something."""
    oracle_batch = collate(toy_features(4).to_list())
    oracle_batch.pop("langs")

    def factory(model):
        return lambda grads: StochasticGradientSurgery(grads, ["xx", "yy"], alpha, seed=3,
                                                       oracle_loss=lambda lang: -model(**oracle_batch).loss)
    return factory


def oracle_calls(outcome) -> list[float]:
    return [entry["oracle_xx"] + entry["oracle_yy"] for entry in outcome.surgery_log]


def test_step_surgery_is_applied_once_per_optimiser_step():
    # 10 examples, micro-batches of 2, grad_accum 2: 5 micro-batches, 3 steps per epoch
    _, outcome, _ = train_toy(epochs=2, batch_size=4, grad_accum=2, surgery=always_conflicting_surgery())
    assert oracle_calls(outcome) == [3.0, 3.0]
    assert [entry["step"] for entry in outcome.surgery_log] == [3, 6]
    assert all(entry["surgery_rate"] == 1.0 for entry in outcome.surgery_log)


def test_micro_batch_surgery_is_applied_after_every_micro_batch():
    _, outcome, _ = train_toy(epochs=2, batch_size=4, grad_accum=2, surgery=always_conflicting_surgery(),
                              granularity="micro_batch")
    assert oracle_calls(outcome) == [5.0, 5.0]
    assert all(entry["surgery_rate"] == 1.0 and entry["conflict_rate"] > 0 for entry in outcome.surgery_log)


def test_granularities_differ_with_accumulation_and_agree_without():
    step, _, _ = train_toy(epochs=1, batch_size=4, grad_accum=2, surgery=always_conflicting_surgery())
    micro, _, _ = train_toy(epochs=1, batch_size=4, grad_accum=2, surgery=always_conflicting_surgery(),
                            granularity="micro_batch")
    plain, _, _ = train_toy(epochs=1, batch_size=4, grad_accum=2)
    assert not same_weights(step, micro.state_dict())
    assert not same_weights(step, plain.state_dict())  # the surgery changed the update
    step, step_outcome, _ = train_toy(epochs=2, batch_size=2, grad_accum=1, surgery=always_conflicting_surgery())
    micro, micro_outcome, _ = train_toy(epochs=2, batch_size=2, grad_accum=1, surgery=always_conflicting_surgery(),
                                        granularity="micro_batch")
    assert same_weights(step, micro.state_dict())
    assert step_outcome.surgery_log == micro_outcome.surgery_log


def test_surgery_at_alpha_zero_leaves_training_unchanged():
    with_surgery, outcome, _ = train_toy(epochs=2, surgery=always_conflicting_surgery(alpha=0.0))
    without, _, _ = train_toy(epochs=2)
    assert same_weights(with_surgery, without.state_dict())
    assert [entry["surgery_rate"] for entry in outcome.surgery_log] == [0.0, 0.0]
    assert math.isnan(outcome.surgery_log[0]["mean_cosine"])
