"""The base of the surgeons that work on per-language gradients of the step's own batch (PCGrad over languages,
UPGrad): no oracle batches. At a step whose micro-batches hold two languages or more (English and the shots of
the targets present), with probability alpha, the gradient of each language's examples is computed on its own,
one forward/backward pass per language present in each micro-batch, and the training gradient is replaced by the
surgeon's combination of them (`aggregate`). A step with one language present is left alone: every combination
of one gradient is that gradient.

Each language's gradient is weighted by its share of the micro-batch (n_l / n, and 1/grad_accum per micro-batch,
as the training loss is), so that the language gradients add up to the training gradient up to the token-mean
of tagging losses and dropout: an aggregation that changes nothing (no conflicts) gives back co-training's step.
Memory: one gradient-sized row per language present (the gradient matrix). The statistics compare the first
language present (English when it is there) with the sum of the others; `language_passes` counts the extra
passes."""

from __future__ import annotations

import math

import torch

from fslib.core.languages import SOURCE_LANG
from fslib.engine.surgery import Surgeon


class LanguageGradientSurgeon(Surgeon):
    needs_oracle_buffer = False  # its per-language rows instead

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.batch_loss is None:
            raise ValueError(f"{type(self).__name__} needs batch_loss (the model's loss on a collated batch)")
        self.group: list[dict] = []

    @staticmethod
    def oracle_passes(alpha: float, oracle_languages: int) -> float:
        return 0.0  # no oracle batches: the step's own examples

    @staticmethod
    def batch_passes(alpha: float, presence: list[float]) -> float:
        """alpha x E[L 1{L >= 2}], L the languages present in a micro-batch, each language present independently
        with its probability in `presence`."""
        one = sum(p * math.prod(1 - q for j, q in enumerate(presence) if j != i) for i, p in enumerate(presence))
        return alpha * (sum(presence) - one)

    def observe(self, group: list[dict]) -> None:
        self.group = [dict(batch) for batch in group]  # copies: the training loop pops the originals' languages

    def aggregate(self, rows: torch.Tensor) -> torch.Tensor:
        """The gradient the optimiser uses, from the per-language gradients (`rows`, one per language present)."""
        raise NotImplementedError

    def apply(self) -> None:
        present = sorted({lang for batch in self.group for lang in batch["langs"]},
                         key=lambda lang: (lang != SOURCE_LANG, lang))
        if len(present) < 2 or self.rng.random() >= self.alpha:
            return
        self.surgeries += 1
        self.oracle_counts.update(present[1:])
        rows = self.language_gradients(present)
        others = rows[1:].sum(0)
        self.record(torch.dot(rows[0], others), rows[0].norm(), torch.dot(others, others))
        self.grads.buffer.copy_(self.aggregate(rows))

    def language_gradients(self, langs: list[str]) -> torch.Tensor:
        """One row per language of `langs`: the gradient of its examples in the step's micro-batches."""
        rows = torch.empty(len(langs), self.grads.buffer.numel(), dtype=self.grads.buffer.dtype,
                           device=self.grads.buffer.device)
        for row, lang in zip(rows, langs):
            self.grads.zero_()
            for batch in self.group:
                chosen = [i for i, batch_lang in enumerate(batch["langs"]) if batch_lang == lang]
                if not chosen:
                    continue
                index = torch.tensor(chosen)
                sub = {key: value[index] for key, value in batch.items() if key != "langs"}
                share = len(chosen) / len(batch["langs"]) / len(self.group)
                self.backward(self.batch_loss({**sub, "langs": [lang] * len(chosen)}) * share)
                self.language_passes += 1
            self.grads.check_attached()
            row.copy_(self.grads.buffer)
        return rows

    def reset_stats(self) -> None:
        super().reset_stats()
        self.language_passes = 0

    def stats(self) -> dict[str, float]:
        return {**super().stats(), "language_passes": float(self.language_passes)}
