"""PCGrad over languages (Yu et al., 2020, their Algorithm 1, with languages as the tasks): each language's
gradient of the step's batch (fslib.engine.surgeons.languages) is projected, in a random order of the others,
onto the normal plane of every other language's gradient it conflicts with, and the projected gradients are
summed. The order comes from the surgeon's seeded generator (`permutation`), so a checkpointed run draws what an
uninterrupted one would."""

from __future__ import annotations

import torch

from fslib.engine.surgeons.languages import LanguageGradientSurgeon
from fslib.engine.surgery import project_conflicting


class LanguagePCGrad(LanguageGradientSurgeon):
    name = "pcgrad_languages"

    def permutation(self, m: int) -> list[int]:
        """A random order of 0..m-1, from the surgeon's generator (each language visits the others in it)."""
        order = list(range(m))
        self.rng.shuffle(order)
        return order

    def aggregate(self, rows: torch.Tensor) -> torch.Tensor:
        total = torch.zeros_like(rows[0])
        for i in range(len(rows)):
            projected = rows[i].clone()
            for j in self.permutation(len(rows)):
                if j != i:
                    project_conflicting(projected, rows[j], out=projected)
            total += projected
        return total
