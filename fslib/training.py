"""The one training loop, used by every stage: source-training, target-adapting and co-training.

AdamW (no decay on biases and LayerNorm weights), linear schedule with optional warm-up, gradient accumulation,
gradient clipping, length-grouped (or plain random) batches with dynamic padding, bf16 autocast on CUDA, an
evaluation callback after every epoch (or every N optimiser steps) that may select the best checkpoint, and
optional stochastic gradient surgery between the backward pass and the clipping. Read it top to bottom: `train`
is the whole story.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from torch.utils.data import DataLoader, RandomSampler
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from fslib.features import input_lengths
from fslib.progress import tqdm
from fslib.surgery import FlatGradients, StochasticGradientSurgery


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stops and writes no results."""


@dataclass
class StageSettings:
    """Hyper-parameters of one training stage."""

    epochs: int
    batch_size: int  # effective batch (micro-batch x grad_accum)
    learning_rate: float
    grad_accum: int = 1
    warmup_ratio: float = 0.0
    warmup_steps: int | None = None  # overrides warmup_ratio when set
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    bf16: bool = True  # only on CUDA
    sampler: str = "length_grouped"  # or "random" (the authors' RandomSampler)
    eval_every_steps: int | None = None  # evaluate every N optimiser steps and at the end; None: every epoch


@dataclass
class TrainOutcome:
    selected_epoch: int  # the epoch whose weights the model holds at the end
    selected_step: int = 0  # the optimiser step after which those weights were taken
    surgery_log: list[dict] = field(default_factory=list)  # surgery statistics, one entry per epoch
    steps: int = 0


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA; fp32 elsewhere."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def batches(features: Dataset, micro_batch: int, collator, generator: torch.Generator,
            sampler: str = "length_grouped"):
    """Dynamically padded micro-batches in a random order: length-grouped (HF's LengthGroupedSampler: random
    mega-batches sorted by length, so padding stays small while the order stays random) or plainly random."""
    if sampler == "random":
        order = RandomSampler(features, generator=generator)
    elif sampler == "length_grouped":
        lengths = input_lengths(features)
        order = LengthGroupedSampler(micro_batch, lengths=lengths, generator=generator)
    else:
        raise ValueError(f"sampler must be 'length_grouped' or 'random', not {sampler!r}")
    return DataLoader(features, batch_size=micro_batch, sampler=order, collate_fn=collator)


def to_device(batch: dict, device: torch.device) -> tuple[dict, list[str]]:
    langs = batch.pop("langs")
    return {key: value.to(device) for key, value in batch.items()}, langs


def optimizer_for(model: torch.nn.Module, settings: StageSettings) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(
                parameter)
    return torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=settings.learning_rate, eps=settings.adam_epsilon)


def optimisation_step(model: torch.nn.Module, group: list[dict], *, grads: FlatGradients,
                      optimizer: torch.optim.Optimizer, scheduler, settings: StageSettings, device: torch.device,
                      surgeon: Callable[[], None] | None = None, surgery_granularity: str = "step",
                      where: str = "training") -> torch.Tensor:
    """One optimiser step over a group of micro-batches (gradient accumulation): forward and backward of each
    (stopping on a non-finite loss), the surgery, clipping, AdamW and the schedule; the flat gradient buffer is
    zeroed for the next step. Returns the last micro-batch's loss."""
    for batch in group:
        inputs, langs = to_device(batch, device)
        with autocast(device, settings.bf16):
            loss = model(**inputs).loss
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss.item()} at {where}; languages in the batch: "
                                   f"{', '.join(sorted(set(langs)))}")
        (loss / len(group)).backward()
        if surgeon and surgery_granularity == "micro_batch":
            surgeon()  # the authors' variant: project the running sum after every micro-batch
    if surgeon and surgery_granularity == "step":
        surgeon()
    torch.nn.utils.clip_grad_norm_(grads.parameters, settings.max_grad_norm, foreach=True)
    optimizer.step()
    scheduler.step()
    grads.zero_()  # never set_to_none: the gradients must stay views into the flat buffer
    return loss


def train(model: torch.nn.Module, features: Dataset, settings: StageSettings, *, collator, seed: int,
          device: torch.device, on_evaluate: Callable[[torch.nn.Module, int, int], float | None] | None = None,
          select: str = "last", surgery: Callable[[FlatGradients], StochasticGradientSurgery] | None = None,
          surgery_granularity: str = "step", description: str = "training", progress: bool = True) -> TrainOutcome:
    """Train `model` in place on `features`.

    on_evaluate(model, epoch, step) runs after every epoch (epoch 1-based, step = optimiser steps so far), or,
    with `settings.eval_every_steps`, every that many steps and after the last one; it returns a selection score
    or None. select: "last" keeps the final weights; "best" restores the weights of the evaluation with the
    highest score (the earliest of equal scores).
    surgery: builds the stochastic gradient surgery from the model's flat gradients (co-training only).
    """
    if select not in ("last", "best"):
        raise ValueError(f"select must be 'last' or 'best', not {select!r}")
    model.to(device).train()
    generator = torch.Generator().manual_seed(seed)
    micro_batch = settings.batch_size // settings.grad_accum
    loader = batches(features, micro_batch, collator, generator, settings.sampler)
    steps_per_epoch = math.ceil(len(loader) / settings.grad_accum)
    total_steps = steps_per_epoch * settings.epochs
    warmup = settings.warmup_steps if settings.warmup_steps is not None else int(settings.warmup_ratio * total_steps)
    optimizer = optimizer_for(model, settings)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    grads = FlatGradients(list(model.parameters()))
    surgeon = surgery(grads) if surgery else None
    outcome = TrainOutcome(selected_epoch=settings.epochs, selected_step=total_steps)
    best_state, best_score = None, -math.inf

    def evaluate(epoch: int) -> None:
        nonlocal best_state, best_score
        score = on_evaluate(model, epoch, outcome.steps) if on_evaluate else None
        model.train()
        if select == "best" and score is not None and score > best_score:
            best_score, outcome.selected_epoch, outcome.selected_step = score, epoch, outcome.steps
            best_state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}

    every = settings.eval_every_steps
    bar = tqdm(total=total_steps, desc=description, disable=not progress, unit="step", leave=False)
    for epoch in range(1, settings.epochs + 1):
        micro_batches = iter(loader)
        for _ in range(steps_per_epoch):
            group = [b for _, b in zip(range(settings.grad_accum), micro_batches)]
            outcome.steps += 1
            loss = optimisation_step(model, group, grads=grads, optimizer=optimizer, scheduler=scheduler,
                                     settings=settings, device=device, surgeon=surgeon,
                                     surgery_granularity=surgery_granularity,
                                     where=f"{description}: step {outcome.steps} (epoch {epoch})")
            bar.update()
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}")
            if every and (outcome.steps % every == 0 or outcome.steps == total_steps):
                evaluate(epoch)
        if surgeon:
            outcome.surgery_log.append({"epoch": epoch, "step": outcome.steps, **surgeon.stats()})
            surgeon.reset_stats()
        if not every:
            evaluate(epoch)
    bar.close()
    if select == "best" and best_state is not None:
        model.load_state_dict(best_state)
    return outcome
