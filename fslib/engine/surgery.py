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
accumulates straight into it). A surgeon adds a second row beside it, one (2, N) tensor: for the oracle pass the
`.grad` views are pointed at the second row, so the oracle backward fills it while the training gradient stays
where it is (no copy), then pointed back; `project_conflicting` writes the projection into the model's row (a
tensor coefficient `min(dot, 0) / |g_oracle|^2`: no Python `if` on a device scalar, so no host sync). Two
gradient-sized buffers, one of which is the model's own gradient storage, and no `retain_graph`. The three sums
the projection needs (g·o, |g|, |o|^2) are, on CUDA, one matrix product of the (2, N) tensor with its transpose,
one read of each row (`gradient_products`, `fused`); elsewhere (the reference, and the CPU's default) three
reductions, the arithmetic of the shipped CPU results.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    products and copies are single kernels. `buffer` is the model's gradient; `add_oracle_buffer` puts a second,
    `oracle`, beside it (rows of one tensor, `rows`), and `oracle_gradients()` points the `.grad` views at it for
    a pass. `zero_` and `check_attached` act on the buffer the views point at (`attached`)."""

    def __init__(self, parameters: list[torch.nn.Parameter]):
        self.parameters = [p for p in parameters if p.requires_grad]
        first = self.parameters[0]
        self.rows = torch.zeros(1, sum(p.numel() for p in self.parameters), dtype=first.dtype, device=first.device)
        self.buffer, self.oracle = self.rows[0], None
        self._views: dict[int, list[torch.Tensor]] = {}  # per row (its address): one view per parameter
        self.attach()

    def add_oracle_buffer(self) -> torch.Tensor:
        """The second buffer (allocated once, with the model's as a (2, N) tensor, which keeps its content)."""
        if self.oracle is None:
            rows = torch.zeros(2, self.buffer.numel(), dtype=self.buffer.dtype, device=self.buffer.device)
            rows[0].copy_(self.buffer)
            self.rows, self.buffer, self.oracle = rows, rows[0], rows[1]
            self._views.clear()
            self.point_at(self.buffer)
        return self.oracle

    def zero_(self) -> None:
        self.attached.zero_()

    def point_at(self, buffer: torch.Tensor) -> None:
        """Point every `.grad` at its slice of `buffer` (a row of `rows`), which then receives the gradients. The
        views are made once per row: a surgery points the gradients away and back every time."""
        if buffer.data_ptr() not in self._views:
            slices = torch.split(buffer, [p.numel() for p in self.parameters])
            self._views[buffer.data_ptr()] = [part.view_as(p) for part, p in zip(slices, self.parameters)]
        for p, view in zip(self.parameters, self._views[buffer.data_ptr()]):
            p.grad = view
        self.attached = buffer

    def attach(self) -> None:
        """Zero the buffer and point every `.grad` at it again (after something set the gradients to None, as
        `zero_grad(set_to_none=True)` does)."""
        self.buffer.zero_()
        self.point_at(self.buffer)

    @contextmanager
    def oracle_gradients(self) -> Iterator[torch.Tensor]:
        """Within: backward passes accumulate into `oracle` (its content is the caller's to zero), the model's
        gradient is left alone."""
        self.point_at(self.oracle)
        try:
            yield self.oracle
        finally:
            self.point_at(self.buffer)

    def check_attached(self) -> None:
        """Autograd accumulates in place into the views; if anything replaced a `.grad`, say so loudly."""
        start, size = self.attached.data_ptr(), self.attached.numel() * self.attached.element_size()
        for p in self.parameters:
            if p.grad is None or not start <= p.grad.data_ptr() < start + size:
                raise RuntimeError("a parameter's .grad no longer points into the flat gradient buffer "
                                   "(was zero_grad(set_to_none=True) called?)")


def gradient_products(grads: FlatGradients, fused: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """g·o, |g| and |o|^2 of the model's gradient g (`grads.buffer`) and the oracle's o (`grads.oracle`), as device
    scalars. fused: one matrix product of the (2, N) rows with their transpose (each row read once); else three
    reductions (torch.dot, torch.norm: the reference). The two agree within fp32 rounding, as long as fp32 matrix
    products are not allowed TF32 (`torch.set_float32_matmul_precision("high")`; the kit leaves the default)."""
    if fused:
        gram = torch.mm(grads.rows, grads.rows.t())
        return gram[0, 1], gram[0, 0].sqrt(), gram[1, 1]
    return torch.dot(grads.buffer, grads.oracle), grads.buffer.norm(), torch.dot(grads.oracle, grads.oracle)


class Surgeon:
    """A gradient surgeon, applied to the gradient accumulated so far (after backward, before clipping and the
    step). The base owns what every variant needs: the model's flat gradients (`grads`, a `FlatGradients`) with a
    second buffer for the oracle's (unless `needs_oracle_buffer` is False), the oracle pass (`oracle_gradient`),
    a seeded generator (`rng`), the statistics, a `state_dict` that checkpoints save (so that a resumed run draws
    what an uninterrupted one would), and the expected number of oracle passes per application
    (`oracle_passes`, which fslib.batch.cost prices). `apply` writes the gradient the optimiser will use into
    the model's buffer (`grads.buffer`, the training gradient so far).

    `oracle_loss(lang)` runs the forward pass on `lang`'s oracle batch and returns the loss; `backward(loss)`
    back-propagates it (default `loss.backward()`; with a gradient scaler, `scaler.scale(loss).backward()`).
    Instead of the two, `oracle_pass(lang)` may do the whole pass, leaving `lang`'s oracle gradient in the buffer
    the gradients point at (`grads.attached`) in place of what it held (fslib.engine.captured_oracle replays it
    from CUDA graphs). Statistics are accumulated on the device and read at log time. A subclass implements
    `apply`. `fused` (default: on CUDA) chooses how `gradient_products` sums.
    """

    name: ClassVar[str] = "surgeon"
    needs_oracle_buffer: ClassVar[bool] = True  # False for a surgeon that never calls `oracle_gradient`

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
        if self.needs_oracle_buffer:
            grads.add_oracle_buffer()  # the second gradient-sized buffer
        self.fused = grads.buffer.is_cuda
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
        """Run `lang`'s oracle pass into the oracle buffer: returns (the training gradient, in the model's buffer,
        where the variant writes the gradient the optimiser will use; the oracle gradient). Counts the surgery."""
        self.surgeries += 1
        self.oracle_counts[lang] += 1
        with self.grads.oracle_gradients():
            self.oracle_pass(lang)
            self.grads.check_attached()
        return self.grads.buffer, self.grads.oracle

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
