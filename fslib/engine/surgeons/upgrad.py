"""UPGrad (Quinton and Rey, "Jacobian Descent for Multi-Objective Optimization", 2024) over the per-language
gradients of the step's batch (fslib.engine.surgeons.languages), taken from TorchJD (torchjd.aggregation.UPGrad)
rather than rewritten: each language's gradient is projected onto the dual cone of all of them (so that it
conflicts with none) and the projections are summed (a preference vector of ones: with no conflict, the sum of
the language gradients, co-training's step). TorchJD solves the projection's quadratic program with quadprog, on
the CPU, from the languages' Gram matrix (L x L); the gradient matrix itself stays on the device."""

from __future__ import annotations

import torch
from torchjd.aggregation import UPGrad

from fslib.engine.surgeons.languages import LanguageGradientSurgeon


class LanguageUPGrad(LanguageGradientSurgeon):
    name = "upgrad"

    def aggregate(self, rows: torch.Tensor) -> torch.Tensor:
        return UPGrad(pref_vector=torch.ones(len(rows), dtype=rows.dtype, device=rows.device))(rows)
