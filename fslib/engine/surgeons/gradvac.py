"""GradVac (Gradient Vaccine; Wang, Tsvetkov, Firat and Cao, ICLR 2021), made asymmetric as the paper's surgery
is: only the training gradient is changed, against the oracle gradient of one language drawn uniformly, with
probability alpha (the language drawn before the coin, as the paper's surgeon does).

For each parameter tensor k ("layer") and oracle language l the surgeon keeps a target cosine phi_hat[l, k], a
moving average of the cosines it has seen (starting at 0). When the cosine phi of the training gradient g and
the oracle gradient o on tensor k is below its target, g is moved towards o so that their cosine becomes the
target exactly (their equation 2):

    g <- g + |g| (phi_hat sqrt(1 - phi^2) - phi sqrt(1 - phi_hat^2)) / (|o| sqrt(1 - phi_hat^2)) o

which, unlike the projection, also acts on a positive cosine below target. Then
phi_hat <- (1 - beta) phi_hat + beta phi (with phi measured before the change). The targets are the surgeon's
state: they go through the epoch checkpoint, so a resumed run adjusts as an uninterrupted one would. The
statistics add the mean target over tensors and languages (`mean_target`) at the epoch's end."""

from __future__ import annotations

import torch

from fslib.engine.surgeons.layers import oracle_layers, tensor_dots
from fslib.engine.surgery import EPS, Surgeon


def vaccinate(dot: torch.Tensor, g_norm: torch.Tensor, o_norm: torch.Tensor,
              target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(The coefficient w of o in g + w o, zero where the cosine is at or above its target; the cosines), for
    tensors of per-layer dots and norms."""
    cosine = dot / (g_norm * o_norm + EPS)
    below = cosine < target
    sine = (1 - cosine ** 2).clamp(min=0).sqrt()
    target_sine = (1 - target ** 2).clamp(min=0).sqrt()
    w = g_norm * (target * sine - cosine * target_sine) / (o_norm * target_sine + EPS)
    return torch.where(below, w, torch.zeros_like(w)), cosine


class GradVac(Surgeon):
    name = "gradvac"

    def __init__(self, *args, beta: float = 0.01, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"GradVac's beta must be in [0, 1], got {beta}")
        self.beta = beta
        buffer = self.grads.buffer
        self.targets = torch.zeros(len(self.languages), len(self.grads.parameters), dtype=buffer.dtype,
                                   device=buffer.device)

    def apply(self) -> None:
        lang = self.draw_oracle_language()
        if lang is None:
            return
        train_views, oracle_views, dots, oracle_norms2 = oracle_layers(self, lang)
        train_norms = tensor_dots(train_views, train_views).sqrt()
        row = self.languages.index(lang)
        w, cosines = vaccinate(dots, train_norms, oracle_norms2.sqrt(), self.targets[row])
        for train, oracle, coefficient in zip(train_views, oracle_views, w):
            torch.addcmul(train, oracle, coefficient, out=train)  # g + w o, into the model's grads
        self.targets[row] = torch.where(torch.isfinite(cosines), (1 - self.beta) * self.targets[row]
                                        + self.beta * cosines, self.targets[row])

    def stats(self) -> dict[str, float]:
        return {**super().stats(), "mean_target": float(self.targets.mean())}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "targets": self.targets.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.targets.copy_(state["targets"])
