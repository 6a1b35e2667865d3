"""The optimisers a run can use (`optimizer`): torch's AdamW (the default) and transformers' former AdamW, which
the authors' scripts use (XTREME's `from transformers import AdamW`, `correct_bias=True`; removed from
transformers since). They differ in two places: transformers' adds eps to sqrt(v) before the bias correction
(torch's after it), and decays the weights after the Adam update (torch's before). Where a gradient is far above
eps / sqrt(1 - beta2^t) (3e-7 at the first step) the two take the same step."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class TransformersAdamW(torch.optim.Optimizer):
    """transformers' AdamW (v4, `correct_bias=True`), line for line: m and v as Adam's, the step
    lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps), then weight decay lr * wd * p on the updated p."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                step_size = group["lr"] * math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
                p.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(group["eps"]), value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        return loss


def build_optimizer(name: str, groups: list[dict], *, lr: float, eps: float) -> torch.optim.Optimizer:
    """`groups`: parameter groups with their weight decay."""
    if name == "torch_adamw":
        return torch.optim.AdamW(groups, lr=lr, eps=eps)
    if name == "transformers_adamw":
        return TransformersAdamW(groups, lr=lr, eps=eps)
    raise ValueError(f"optimizer must be 'torch_adamw' or 'transformers_adamw', not {name!r}")
