"""The one training loop, used by every stage: source-training, target-adapting and co-training.

AdamW (no decay on biases and LayerNorm weights), linear schedule with optional warm-up, gradient accumulation,
gradient clipping, length-grouped (or plain random) batches with dynamic padding, bf16 or fp16 autocast on CUDA
(fp16 with a gradient scaler, for GPUs without bf16), an evaluation callback after every epoch (or every N
optimiser steps) that may select the best checkpoint, and optional stochastic gradient surgery between the
backward pass and the clipping, and a checkpoint at every epoch end from which a killed run resumes
(fslib.engine.checkpoint). Read it top to bottom: `train` is the whole story.
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

from fslib.core.progress import tqdm
from fslib.core.steps import steps_per_epoch as epoch_steps
from fslib.core.surgeons import check_granularity
from fslib.engine.checkpoint import EpochCheckpoint, capture, restore
from fslib.engine.features import input_lengths
from fslib.engine.optimizers import build_optimizer
from fslib.engine.surgery import FlatGradients, Surgeon
from fslib.engine.tracking import LOG_EVERY


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
    precision: str = "bf16"  # bf16 | fp16 | fp32 autocast; only on CUDA (fp32 elsewhere)
    sampler: str = "length_grouped"  # or "random" (the authors' RandomSampler)
    eval_every_steps: int | None = None  # evaluate every N optimiser steps and at the end; None: every epoch
    scheduler_first: bool = False  # step the schedule before the optimiser (the authors' NER/POS script)
    # the authors' epoch end: steps per epoch rounded down, the micro-batches left over go backward and their
    # gradients carry into the next epoch's first step (the last epoch's are dropped); False: a partial last step
    carry_leftovers: bool = False
    optimizer: str = "torch_adamw"  # or "transformers_adamw" (the authors' scripts; fslib.engine.optimizers)


@dataclass
class TrainOutcome:
    selected_epoch: int  # the epoch whose weights the model holds at the end
    selected_step: int = 0  # the optimiser step after which those weights were taken
    surgery_log: list[dict] = field(default_factory=list)  # surgery statistics, one entry per epoch
    steps: int = 0
    training_log: list[dict] = field(default_factory=list)  # loss and learning rate (fslib.engine.tracking)


PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def autocast(device: torch.device, precision: str):
    """bf16 or fp16 autocast on CUDA (weights, gradients and optimiser state stay fp32); fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if PRECISIONS[precision] is not None and device.type == "cuda":
        return torch.autocast("cuda", dtype=PRECISIONS[precision])
    return nullcontext()


def gradient_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """fp16 on CUDA needs loss scaling (small gradients underflow in fp16); elsewhere a disabled scaler, whose
    scale/unscale_/step/update are the plain operations."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")


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


def optimizer_for(model: torch.nn.Module, settings: StageSettings) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(
                parameter)
    return build_optimizer(settings.optimizer, [{"params": decay, "weight_decay": settings.weight_decay},
                                                {"params": no_decay, "weight_decay": 0.0}],
                           lr=settings.learning_rate, eps=settings.adam_epsilon)


def optimisation_step(model: torch.nn.Module, group: list[dict], *, grads: FlatGradients,
                      optimizer: torch.optim.Optimizer, scheduler, settings: StageSettings, device: torch.device,
                      surgeon: Callable[[], None] | None = None, surgery_granularity: str = "step",
                      scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """One optimiser step over a group of micro-batches (gradient accumulation): forward and backward of each,
    the surgery, clipping, AdamW and the schedule; the flat gradient buffer is zeroed for the next step. Returns
    the mean loss of the micro-batches, on the device: nothing here waits for the GPU, so the caller checks that
    the loss is finite (`train` reads the losses of `log_every` steps at once, in one host sync).

    With a gradient `scaler` (fp16) the backward passes and the surgery work on scaled gradients (the projection
    does not depend on the scale; the surgeon must scale its oracle loss the same way, see `train`), which are
    unscaled before the clipping; a step whose gradients hold an inf or NaN is skipped by the scaler."""
    scaler = scaler or torch.amp.GradScaler(device.type, enabled=False)
    losses = []
    if isinstance(surgeon, Surgeon):
        surgeon.observe(group)
    for batch in group:
        inputs, _ = to_device(batch, device)
        with autocast(device, settings.precision):
            loss = model(**inputs).loss
        scaler.scale(loss / len(group)).backward()
        losses.append(loss.detach())
        del loss  # frees the autograd graph now: a live one would tie the captured oracle pass to this stream
        if surgeon and surgery_granularity == "micro_batch":
            surgeon()  # the authors' variant: project the running sum after every micro-batch
    if surgeon and surgery_granularity == "step":
        surgeon()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(grads.parameters, settings.max_grad_norm, foreach=True)
    scale = scaler.get_scale() if scaler.is_enabled() else None
    if settings.scheduler_first:  # run_tag.py's order: this step already uses the next step's learning rate
        scheduler.step()
    scaler.step(optimizer)
    scaler.update()
    if not settings.scheduler_first and (scale is None or scaler.get_scale() >= scale):  # a skipped step (scale
        scheduler.step()  # lowered) leaves the schedule, as HF does
    grads.zero_()  # never set_to_none: the gradients must stay views into the flat buffer
    return torch.stack(losses).mean()


def carry_over(model: torch.nn.Module, batch: dict, *, settings: StageSettings, device: torch.device,
               surgeon: Callable[[], None] | None, surgery_granularity: str, scaler: torch.amp.GradScaler) -> None:
    """A micro-batch left over at an epoch's end (`carry_leftovers`): forward and backward, its loss scaled as in a
    full step (1 / grad_accum), micro-batch surgery as after any micro-batch; no optimiser step, so its gradient
    stays in the buffer for the next step, as in the authors' loop (a resumed run starts without it)."""
    inputs, _ = to_device(batch, device)
    with autocast(device, settings.precision):
        loss = model(**inputs).loss
    scaler.scale(loss / settings.grad_accum).backward()
    del loss
    if surgeon and surgery_granularity == "micro_batch":
        surgeon()


def train(model: torch.nn.Module, features: Dataset, settings: StageSettings, *, collator, seed: int,
          device: torch.device, on_evaluate: Callable[[torch.nn.Module, int, int], float | None] | None = None,
          select: str = "last", surgery: Callable[[FlatGradients], Surgeon] | None = None,
          surgery_granularity: str = "step", description: str = "training", progress: bool = True,
          log_every: int = LOG_EVERY, on_log: Callable[[dict], None] | None = None,
          checkpoint: EpochCheckpoint | None = None,
          on_final_weights: Callable[[torch.nn.Module], None] | None = None) -> TrainOutcome:
    """Train `model` in place on `features`.

    on_evaluate(model, epoch, step) runs after every epoch (epoch 1-based, step = optimiser steps so far), or,
    with `settings.eval_every_steps`, every that many steps and after the last one; it returns a selection score
    or None. select: "last" keeps the final weights; "best" restores the weights of the evaluation with the
    highest score (the earliest of equal scores).
    surgery: builds the stochastic gradient surgery from the model's flat gradients (co-training only).
    The mean loss and the learning rate of every `log_every` steps and of every epoch go to
    `outcome.training_log` (stage = `description`); `on_log` sees each entry, and the surgery statistics, as
    they come (fslib.engine.tracking.TensorBoardLog is one).
    checkpoint: saved at every epoch end but the last; when it holds a state, training resumes after that epoch
    (the caller's rows of the epochs done come back through its extra state, not from `on_evaluate` again).
    on_final_weights(model) sees the model after the last step, before `select: best` restores the best weights.
    """
    if select not in ("last", "best"):
        raise ValueError(f"select must be 'last' or 'best', not {select!r}")
    check_granularity(surgery_granularity)  # an unknown one would silently skip the surgery
    model.to(device).train()
    generator = torch.Generator().manual_seed(seed)
    micro_batch = settings.batch_size // settings.grad_accum
    loader = batches(features, micro_batch, collator, generator, settings.sampler)
    steps_per_epoch = epoch_steps(len(loader), settings.grad_accum, carry_leftovers=settings.carry_leftovers)
    if steps_per_epoch == 0:
        raise ValueError(f"{description}: {len(loader)} micro-batches per epoch, fewer than grad_accum "
                         f"{settings.grad_accum}: no optimiser step would be taken (epoch ends carry leftovers)")
    total_steps = steps_per_epoch * settings.epochs
    warmup = settings.warmup_steps if settings.warmup_steps is not None else int(settings.warmup_ratio * total_steps)
    optimizer = optimizer_for(model, settings)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    grads = FlatGradients(list(model.parameters()))
    scaler = gradient_scaler(device, settings.precision)
    surgeon = surgery(grads) if surgery else None
    if surgeon and scaler.is_enabled():
        surgeon.backward = lambda oracle_loss: scaler.scale(oracle_loss).backward()  # same scale as g_train
    outcome = TrainOutcome(selected_epoch=settings.epochs, selected_step=total_steps)
    best_state, best_score = None, -math.inf
    loop = dict(model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, generator=generator,
                surgeon=surgeon)
    done_epochs = 0
    if checkpoint and (saved := checkpoint.load(total_steps)) is not None:
        restore(saved, outcome=outcome, **loop)
        done_epochs, best_state, best_score = saved["epoch"], saved["best_state"], saved["best_score"]

    def evaluate(epoch: int) -> None:
        nonlocal best_state, best_score
        score = on_evaluate(model, epoch, outcome.steps) if on_evaluate else None
        model.train()
        if select == "best" and score is not None and score > best_score:
            best_score, outcome.selected_epoch, outcome.selected_step = score, epoch, outcome.steps
            best_state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}

    pending: list[tuple[int, int, list[str], torch.Tensor]] = []  # (step, epoch, languages, loss on the device)

    def settle() -> None:
        """Read the losses of the steps since the last read, in one host sync (so that the GPU is not waited for
        at every step), and stop at the first that is not finite."""
        if not pending:
            return
        values = torch.stack([loss for *_, loss in pending]).tolist()
        for (step, epoch, langs, _), value in zip(pending, values):
            if not math.isfinite(value):
                raise TrainingDiverged(f"loss is {value} at {description}: step {step} (epoch {epoch}); "
                                       f"languages in the batch: {', '.join(langs)}")
        interval_losses.extend(values)
        epoch_losses.extend(values)
        pending.clear()
        bar.set_postfix(epoch=epoch, loss=f"{values[-1]:.3f}")

    def log(kind: str, epoch: int, losses: list[float], learning_rate: float) -> None:
        entry = {"stage": description, "kind": kind, "epoch": epoch, "step": outcome.steps,
                 "loss": sum(losses) / len(losses), "learning_rate": learning_rate}
        outcome.training_log.append(entry)
        if on_log:
            on_log(entry)

    every = settings.eval_every_steps
    bar = tqdm(total=total_steps, initial=outcome.steps, desc=description, disable=not progress, unit="step",
               leave=False)
    for epoch in range(done_epochs + 1, settings.epochs + 1):
        micro_batches = iter(loader)
        interval_losses, epoch_losses = [], []
        for _ in range(steps_per_epoch):
            group = [b for _, b in zip(range(settings.grad_accum), micro_batches)]
            langs = sorted({lang for batch in group for lang in batch["langs"]})
            outcome.steps += 1
            learning_rate = optimizer.param_groups[0]["lr"]  # the rate this step uses
            pending.append((outcome.steps, epoch, langs, optimisation_step(
                model, group, grads=grads, optimizer=optimizer, scheduler=scheduler, settings=settings,
                device=device, surgeon=surgeon, surgery_granularity=surgery_granularity, scaler=scaler)))
            if outcome.steps % log_every == 0:
                settle()  # the losses are read (and checked) here, before an evaluation and at the epoch's end
                log("interval", epoch, interval_losses, learning_rate)
                interval_losses = []
            bar.update()
            if every and (outcome.steps % every == 0 or outcome.steps == total_steps):
                settle()
                evaluate(epoch)
        for leftover in micro_batches if settings.carry_leftovers else ():  # their gradients join the next step
            carry_over(model, leftover, settings=settings, device=device, surgeon=surgeon,
                       surgery_granularity=surgery_granularity, scaler=scaler)
        settle()
        if interval_losses:
            log("interval", epoch, interval_losses, learning_rate)
        log("epoch", epoch, epoch_losses, learning_rate)
        if surgeon:
            outcome.surgery_log.append({"epoch": epoch, "step": outcome.steps, **surgeon.stats()})
            surgeon.reset_stats()
            if on_log:
                on_log({"stage": description, "kind": "surgery", **outcome.surgery_log[-1]})
        if not every:
            evaluate(epoch)
        if checkpoint and epoch < settings.epochs:  # after the last one, a kill costs an epoch, not a write
            checkpoint.save(capture(epoch, total_steps, outcome=outcome, best_score=best_score, **loop), best_state,
                            outcome.selected_step)
    bar.close()
    if on_final_weights:
        on_final_weights(model)
    if select == "best" and best_state is not None:
        model.load_state_dict(best_state)
    return outcome
