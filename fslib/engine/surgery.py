"""Gradient surgery: the `Surgeon` base that every variant extends, its flat gradient buffer, and the projection
(docs/protocol.md). The stochastic gradient surgery of the paper (Algorithm 1) is one subclass,
fslib.engine.surgeons.stochastic; a variant is one small module with a `Surgeon` subclass whose `apply` is its
arithmetic, registered in fslib.core.surgeons.SURGEONS (or named "module:Class" in a run's `surgeon`).

The stochastic surgery:

At each optimisation step, with probability α, pick one oracle language uniformly, compute the gradient of its
oracle batch (its K shots; for English, a batch of the source train set) and, if it conflicts with the training
gradient (negative dot product), project the training gradient onto the oracle gradient's normal plane
(the PCGrad projection of Yu et al., 2020). When the coin says no, the oracle forward/backward is skipped.

Implementation: the model's gradients live in ONE flat buffer (each `param.grad` is a view into it, so autograd
accumulates straight into it). Surgery copies the training gradient into a second flat buffer, lets the oracle
backward fill the first, and `project_conflicting` writes the projection back into it (a tensor coefficient
`min(dot, 0) / |g_oracle|^2`: no Python `if` on a device scalar, so no host sync): two gradient-sized buffers,
one of which is the model's own gradient storage, and no `retain_graph`.

Loss scaling (fp16): the projection is unchanged when both gradients are multiplied by positive factors - scaling
the training gradient scales the result by the same factor, scaling the oracle gradient changes nothing - so the
surgery runs on the scaled gradients and the scaler unscales the result as usual. `backward` lets the caller
scale the oracle loss like the training loss (keeping it clear of fp16 underflow). A surgery that meets an inf or
NaN (the scaler will then skip the step) does not count as a surgery in the statistics.
"""

from __future__ import annotations

import importlib
import random
from collections import Counter
from collections.abc import Callable
from typing import ClassVar

import torch

from fslib.core.surgeons import surgeon_path

EPS = 1e-20  # guards the division when an oracle gradient is exactly zero (the coefficient is then 0)


def project_conflicting(g: torch.Tensor, g_ref: torch.Tensor, *, dot: torch.Tensor | None = None,
                        ref_norm2: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """`g` unchanged when `g · g_ref >= 0`, else `g` minus its component along `g_ref` (flat tensors): the one
    projection formula of the kit. `dot` and `ref_norm2` (`g_ref · g_ref`) may be passed when already computed;
    `out` may be `g_ref` itself (the update is elementwise), so the surgeon needs no third buffer. The coefficient
    stays a device tensor: no host sync."""
    dot = torch.dot(g, g_ref) if dot is None else dot
    ref_norm2 = torch.dot(g_ref, g_ref) if ref_norm2 is None else ref_norm2
    coefficient = dot.clamp(max=0) / (ref_norm2 + EPS)
    return torch.addcmul(g, g_ref, coefficient, value=-1.0, out=out)  # g - coefficient * g_ref, one pass


class FlatGradients:
    """Lays the gradients of `parameters` out as views into one contiguous buffer, so that whole-model dot
    products and copies are single kernels."""

    def __init__(self, parameters: list[torch.nn.Parameter]):
        self.parameters = [p for p in parameters if p.requires_grad]
        first = self.parameters[0]
        self.buffer = torch.zeros(sum(p.numel() for p in self.parameters), dtype=first.dtype, device=first.device)
        self.attach()

    def zero_(self) -> None:
        self.buffer.zero_()

    def attach(self) -> None:
        """Zero the buffer and point every `.grad` at it again (after something set the gradients to None, as
        `zero_grad(set_to_none=True)` does)."""
        self.buffer.zero_()
        offset = 0
        for p in self.parameters:
            p.grad = self.buffer[offset:offset + p.numel()].view_as(p)
            offset += p.numel()

    def check_attached(self) -> None:
        """Autograd accumulates in place into the views; if anything replaced a `.grad`, say so loudly."""
        for p in self.parameters:
            if p.grad is None or p.grad.data_ptr() < self.buffer.data_ptr() or \
                    p.grad.data_ptr() >= self.buffer.data_ptr() + self.buffer.numel() * self.buffer.element_size():
                raise RuntimeError("a parameter's .grad no longer points into the flat gradient buffer "
                                   "(was zero_grad(set_to_none=True) called?)")


class Surgeon:
    """A gradient surgeon, applied to the gradient accumulated so far (after backward, before clipping and the
    step). The base owns what every variant needs: the model's flat gradients (`grads`, a `FlatGradients`) and a
    second buffer (`saved`), the oracle pass (`oracle_gradient`), a seeded generator (`rng`), the statistics, a
    `state_dict` that checkpoints save (so that a resumed run draws what an uninterrupted one would), and the
    expected number of oracle passes per application (`oracle_passes`, which fslib.batch.cost prices).

    `oracle_loss(lang)` runs the forward pass on `lang`'s oracle batch and returns the loss; `backward(loss)`
    back-propagates it (default `loss.backward()`; with a gradient scaler, `scaler.scale(loss).backward()`).
    Instead of the two, `oracle_pass(lang)` may do the whole pass, leaving `lang`'s oracle gradient in the flat
    buffer in place of what it held (fslib.engine.captured_oracle replays it from CUDA graphs). Statistics are
    accumulated on the device and read at log time. A subclass implements `apply`.
    """

    name: ClassVar[str] = "surgeon"

    def __init__(self, grads: FlatGradients, oracle_languages: list[str], alpha: float, seed: int,
                 oracle_loss: Callable[[str], torch.Tensor] | None = None,
                 backward: Callable[[torch.Tensor], None] | None = None, *,
                 oracle_pass: Callable[[str], None] | None = None,
                 batch_loss: Callable[[dict], torch.Tensor] | None = None):
        if not oracle_languages:
            raise ValueError(f"{type(self).__name__} needs at least one oracle language")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if (oracle_loss is None) == (oracle_pass is None):
            raise ValueError("give the surgery either oracle_loss or oracle_pass")
        self.oracle_pass = oracle_pass or self.eager_oracle_pass
        self.grads, self.languages, self.alpha, self.oracle_loss = grads, list(oracle_languages), alpha, oracle_loss
        self.backward = backward or (lambda loss: loss.backward())
        self.batch_loss = batch_loss  # the model's loss on a collated batch (surgeons of the step's own batch)
        self.rng = random.Random(seed)
        self.saved = torch.empty_like(grads.buffer)  # the second gradient-sized buffer: g_train
        self.reset_stats()

    @staticmethod
    def oracle_passes(alpha: float, oracle_languages: int) -> float:
        """The expected oracle forward/backward passes per application (fslib.batch.cost): one with
        probability `alpha`."""
        return alpha

    @staticmethod
    def batch_passes(alpha: float, presence: list[float]) -> float:
        """The expected extra forward/backward passes per application on the step's own examples
        (fslib.batch.cost), given each language's probability of being in a micro-batch: none here."""
        return 0.0

    def observe(self, group: list[dict]) -> None:
        """Sees the step's micro-batches before their backward passes (a surgeon of the step's own batch keeps
        them); nothing here."""

    def __call__(self) -> None:
        self.applications += 1
        self.apply()

    def apply(self) -> None:
        """The variant's arithmetic on `self.grads.buffer` (the training gradient so far, to be replaced by the
        gradient the optimiser will use)."""
        raise NotImplementedError

    def draw_oracle_language(self) -> str | None:
        """The paper's draw: one oracle language uniformly, then the alpha coin (in this order, as the authors'
        code draws them); None where the coin says no surgery this time."""
        lang = self.rng.choice(self.languages)
        return lang if self.rng.random() < self.alpha else None

    def oracle_gradient(self, lang: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Run `lang`'s oracle pass: returns (the training gradient, copied to `saved`; the oracle gradient, in the
        model's flat buffer). Counts the surgery."""
        self.surgeries += 1
        self.oracle_counts[lang] += 1
        self.saved.copy_(self.grads.buffer)
        self.oracle_pass(lang)
        self.grads.check_attached()
        return self.saved, self.grads.buffer

    def record(self, dot: torch.Tensor, train_norm: torch.Tensor, oracle_norm2: torch.Tensor) -> None:
        """Count one surgery's conflict and cosine, on the device (no host sync); one on an inf or NaN is left
        out (a gradient scaler skips that step)."""
        finite = torch.isfinite(dot) & torch.isfinite(oracle_norm2)
        self._non_finite += (~finite).float()
        self._conflicts += ((dot < 0) & finite).float()
        cosine = dot / (train_norm * oracle_norm2.sqrt() + EPS)
        self._cosine_sum += torch.where(finite, cosine, torch.zeros_like(cosine))

    def eager_oracle_pass(self, lang: str) -> None:
        self.grads.zero_()
        self.backward(self.oracle_loss(lang))

    def reset_stats(self) -> None:
        self.applications = 0
        self.surgeries = 0  # oracle gradients computed
        self.oracle_counts: Counter[str] = Counter()
        device = self.grads.buffer.device
        self._conflicts = torch.zeros((), device=device)
        self._cosine_sum = torch.zeros((), device=device)
        self._non_finite = torch.zeros((), device=device)  # surgeries on gradients with an inf or NaN

    def stats(self) -> dict[str, float]:
        """Surgery rate, conflict rate and mean cosine (over the surgeries) since the last reset; host sync.
        Surgeries on non-finite gradients (steps a gradient scaler skips) are left out of all three and counted
        in `skipped_surgeries`."""
        skipped = int(self._non_finite)
        surgeries = self.surgeries - skipped
        done = max(surgeries, 1)
        stats = {"surgery_rate": surgeries / max(self.applications, 1),
                 "conflict_rate": float(self._conflicts) / done,
                 "mean_cosine": float(self._cosine_sum) / done if surgeries else float("nan"),
                 "skipped_surgeries": float(skipped)}
        stats.update({f"oracle_{lang}": float(self.oracle_counts[lang]) for lang in self.languages})
        return stats

    def state_dict(self) -> dict:
        """What a checkpoint keeps (the statistics are reset at every epoch end, where checkpoints are written).
        A stateful variant adds its own entries."""
        return {"rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])


def get_surgeon(name: str) -> type[Surgeon]:
    """The `Surgeon` subclass of a registered name or of "package.module:Class"."""
    module, cls = surgeon_path(name).split(":")
    surgeon = getattr(importlib.import_module(module), cls)
    if not (isinstance(surgeon, type) and issubclass(surgeon, Surgeon)):
        raise ValueError(f"surgeon {name!r} is {surgeon!r}, not a fslib.engine.surgery.Surgeon subclass")
    return surgeon
