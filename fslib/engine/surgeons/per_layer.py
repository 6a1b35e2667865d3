"""Per-layer stochastic gradient surgery: the paper's Algorithm 1 (fslib.engine.surgeons.stochastic) with its
projection applied to each parameter tensor on its own instead of to the whole flattened model. With probability
alpha, one oracle language drawn uniformly (drawn before the coin, as the paper's surgeon does); every tensor whose
training gradient conflicts with that tensor's oracle gradient is projected onto the oracle's normal plane, the
others are left alone. The statistics are the whole model's (dot of the full gradients), plus the share of the
tensors that conflicted (`layer_conflict_rate`)."""

from __future__ import annotations

import torch

from fslib.engine.surgeons.layers import oracle_layers
from fslib.engine.surgery import EPS, Surgeon


class PerLayerSurgery(Surgeon):
    name = "per_layer"

    def apply(self) -> None:
        lang = self.draw_oracle_language()
        if lang is None:
            return
        train_views, oracle_views, dots, oracle_norms2 = oracle_layers(self, lang)
        self._layer_conflicts += (dots < 0).float().mean()
        coefficients = dots.clamp(max=0) / (oracle_norms2 + EPS)
        for train, oracle, coefficient in zip(train_views, oracle_views, coefficients):
            torch.addcmul(train, oracle, coefficient, value=-1.0, out=train)  # into the model's grads

    def reset_stats(self) -> None:
        super().reset_stats()
        self._layer_conflicts = torch.zeros((), device=self.grads.buffer.device)

    def stats(self) -> dict[str, float]:
        return {**super().stats(), "layer_conflict_rate": float(self._layer_conflicts) / max(self.surgeries, 1)}
