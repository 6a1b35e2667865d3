"""Optimiser steps per epoch: the one rule the training loop runs and fslib.batch.cost prices."""

from __future__ import annotations

import math


def steps_per_epoch(micro_batches: int, grad_accum: int, *, carry_leftovers: bool) -> int:
    """`carry_leftovers` (epoch_end: carry, the authors' scripts): rounded down, the leftover micro-batches'
    gradients joining the next epoch's first step; otherwise a partial last step."""
    if carry_leftovers:
        return micro_batches // grad_accum
    return math.ceil(micro_batches / grad_accum)
