"""Per-tensor views of a flat gradient buffer, for the surgeons that work layer by layer (a "layer" is one
parameter tensor: a weight matrix, a bias, a LayerNorm's scale). Assumes the buffer is laid out as
fslib.engine.surgery.FlatGradients lays out the model's gradients: its parameters in order, each flattened."""

from __future__ import annotations

import torch

from fslib.engine.surgery import FlatGradients, Surgeon


def tensor_views(grads: FlatGradients, buffer: torch.Tensor) -> list[torch.Tensor]:
    """`buffer` (gradient-sized) cut into one flat view per parameter tensor of `grads`."""
    return list(torch.split(buffer, [p.numel() for p in grads.parameters]))


def tensor_dots(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """The dot product of each pair of views, as one device tensor (no host sync)."""
    return torch.stack([torch.dot(x, y) for x, y in zip(a, b)])


def oracle_layers(surgeon: Surgeon, lang: str) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor,
                                                        torch.Tensor]:
    """Run `lang`'s oracle pass for `surgeon` and record the whole model's statistics; returns the training and
    oracle gradients cut per tensor (the training gradient's views are the model's gradients, where the surgeon
    writes its result), their per-tensor dots and the oracle's per-tensor squared norms."""
    train, oracle = surgeon.oracle_gradient(lang)
    train_views, oracle_views = tensor_views(surgeon.grads, train), tensor_views(surgeon.grads, oracle)
    dots = tensor_dots(train_views, oracle_views)
    oracle_norms2 = tensor_dots(oracle_views, oracle_views)
    surgeon.record(dots.sum(), train.norm(), oracle_norms2.sum())
    return train_views, oracle_views, dots, oracle_norms2
