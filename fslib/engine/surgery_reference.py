"""A plain PCGrad step written the usual way (clone and concatenate the gradients, a deep copy of the model for
the oracle gradient, a Python `if` on the dot product). The kit does not train with it: the tests check
`fslib.engine.surgery` against it step by step, and bench/surgery_overhead.py times the two side by side."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable

import torch


class ReferenceSurgery:
    def __init__(self, model: torch.nn.Module, oracle_languages: list[str], alpha: float, seed: int,
                 oracle_loss: Callable[[torch.nn.Module, str], torch.Tensor]):
        self.model, self.languages, self.alpha, self.oracle_loss = model, list(oracle_languages), alpha, oracle_loss
        self.rng = random.Random(seed)
        self.surgeries = self.projections = 0  # counts, for the tests and the benchmark

    @staticmethod
    def flat(model: torch.nn.Module) -> torch.Tensor:
        return torch.cat([(p.grad.clone() if p.grad is not None else torch.zeros_like(p)).flatten()
                          for p in model.parameters() if p.requires_grad])

    def __call__(self) -> None:
        lang = self.rng.choice(self.languages)
        if self.rng.random() >= self.alpha:
            return
        self.surgeries += 1
        g_train = self.flat(self.model)
        oracle_model = copy.deepcopy(self.model)
        oracle_model.zero_grad(set_to_none=True)
        self.oracle_loss(oracle_model, lang).backward()
        g_oracle = self.flat(oracle_model)
        dot = torch.dot(g_train, g_oracle)
        if dot < 0:
            self.projections += 1
            g_train = g_train - dot / torch.dot(g_oracle, g_oracle) * g_oracle
        offset = 0
        for p in self.model.parameters():
            if p.requires_grad:
                p.grad.copy_(g_train[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
