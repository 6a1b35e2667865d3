"""Stochastic gradient surgery (the paper's Algorithm 1; docs/protocol.md).

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

import random
from collections import Counter
from collections.abc import Callable

import torch

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


class StochasticGradientSurgery:
    """The stochastic part: a seeded generator draws, per application, Bernoulli(α) and the oracle language.

    `oracle_loss(lang)` runs the forward pass on `lang`'s oracle batch and returns the loss; the caller's model
    gradients must be a `FlatGradients`. `backward(loss)` back-propagates the oracle loss (default
    `loss.backward()`; with a gradient scaler, `scaler.scale(loss).backward()`). Instead of the two,
    `oracle_pass(lang)` may do the whole pass, leaving `lang`'s oracle gradient in the flat buffer in place of
    what it held (`fslib.captured_oracle` replays it from CUDA graphs). Statistics are accumulated on the device
    and read at log time.
    """

    def __init__(self, grads: FlatGradients, oracle_languages: list[str], alpha: float, seed: int,
                 oracle_loss: Callable[[str], torch.Tensor] | None = None,
                 backward: Callable[[torch.Tensor], None] | None = None, *,
                 oracle_pass: Callable[[str], None] | None = None):
        if not oracle_languages:
            raise ValueError("stochastic gradient surgery needs at least one oracle language")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if (oracle_loss is None) == (oracle_pass is None):
            raise ValueError("give the surgery either oracle_loss or oracle_pass")
        self.oracle_pass = oracle_pass or self.eager_oracle_pass
        self.grads, self.languages, self.alpha, self.oracle_loss = grads, list(oracle_languages), alpha, oracle_loss
        self.backward = backward or (lambda loss: loss.backward())
        self.rng = random.Random(seed)
        self.saved = torch.empty_like(grads.buffer)  # the second gradient-sized buffer: g_train
        self.reset_stats()

    def reset_stats(self) -> None:
        self.applications = 0
        self.surgeries = 0  # coin said yes: oracle gradient computed
        self.oracle_counts: Counter[str] = Counter()
        device = self.grads.buffer.device
        self._conflicts = torch.zeros((), device=device)
        self._cosine_sum = torch.zeros((), device=device)
        self._non_finite = torch.zeros((), device=device)  # surgeries on gradients with an inf or NaN

    def __call__(self) -> None:
        """Apply to the gradient accumulated so far (call after backward, before clipping and the step)."""
        self.applications += 1
        lang = self.rng.choice(self.languages)
        if self.rng.random() >= self.alpha:
            return
        self.surgeries += 1
        self.oracle_counts[lang] += 1
        flat = self.grads.buffer
        self.saved.copy_(flat)
        self.oracle_pass(lang)
        self.grads.check_attached()
        dot = torch.dot(self.saved, flat)
        oracle_norm2 = torch.dot(flat, flat)
        finite = torch.isfinite(dot) & torch.isfinite(oracle_norm2)  # on the device: no host sync
        self._non_finite += (~finite).float()
        self._conflicts += ((dot < 0) & finite).float()
        cosine = dot / (self.saved.norm() * oracle_norm2.sqrt() + EPS)
        self._cosine_sum += torch.where(finite, cosine, torch.zeros_like(cosine))
        project_conflicting(self.saved, flat, dot=dot, ref_norm2=oracle_norm2, out=flat)  # into the model's grads

    def eager_oracle_pass(self, lang: str) -> None:
        self.grads.zero_()
        self.backward(self.oracle_loss(lang))

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
