"""Stochastic gradient surgery, the paper's Algorithm 1: at each application, with probability alpha, one oracle
language drawn uniformly; its oracle gradient computed and, if it conflicts with the training gradient (negative
dot product), the training gradient projected onto its normal plane (PCGrad's projection). The language is drawn
before the coin, as the authors' code does, so that the draws match theirs."""

from __future__ import annotations

import torch

from fslib.engine.surgery import Surgeon, project_conflicting


class StochasticGradientSurgery(Surgeon):
    name = "stochastic"

    def apply(self) -> None:
        lang = self.draw_oracle_language()
        if lang is None:
            return
        saved, flat = self.oracle_gradient(lang)
        dot = torch.dot(saved, flat)
        oracle_norm2 = torch.dot(flat, flat)
        self.record(dot, saved.norm(), oracle_norm2)
        project_conflicting(saved, flat, dot=dot, ref_norm2=oracle_norm2, out=flat)  # into the model's grads
