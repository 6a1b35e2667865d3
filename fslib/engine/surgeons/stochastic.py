"""Stochastic gradient surgery, the paper's Algorithm 1: at each application, with probability alpha, one oracle
language drawn uniformly; its oracle gradient computed and, if it conflicts with the training gradient (negative
dot product), the training gradient projected onto its normal plane (PCGrad's projection). The language is drawn
before the coin, as the authors' code does, so that the draws match theirs."""

from __future__ import annotations

from fslib.engine.surgery import Surgeon, gradient_products, project_conflicting


class StochasticGradientSurgery(Surgeon):
    name = "stochastic"

    def apply(self) -> None:
        lang = self.draw_oracle_language()
        if lang is None:
            return
        train, oracle = self.oracle_gradient(lang)
        dot, train_norm, oracle_norm2 = gradient_products(self.grads, self.fused)
        self.record(dot, train_norm, oracle_norm2)
        project_conflicting(train, oracle, dot=dot, ref_norm2=oracle_norm2, out=train)  # the model's gradient
