"""Stochastic gradient surgery for people who train with `transformers.Trainer`.

Why a subclass and not a callback: in transformers 5.x, `Trainer._run_epoch` clips the gradients *before* it
calls the `on_pre_optimizer_step` callback, so a callback would project an already clipped gradient; and after
every optimiser step it calls `model.zero_grad()`, which sets the gradients to None and so detaches them from
the flat buffer the surgery works on. `SurgeryTrainer` therefore overrides `training_step` (forward and backward
of one micro-batch):

- before the backward, it points the gradients back into the flat buffer when `zero_grad` released them;
- after the backward, on the last micro-batch of an optimiser step (`accelerator.sync_gradients`, which the loop
  sets before calling `training_step`), it applies the surgery: after the whole accumulated gradient, before
  clipping and the step - the same place as the kit's own loop (`fslib.engine.training.optimisation_step`). With
  `surgery_granularity="micro_batch"` it applies it after every micro-batch, as the authors' code does.

The oracle loss goes through `compute_loss` (so a custom loss applies to it too) and its backward through
`accelerator.backward`, which scales it like the training loss under fp16. Surgery statistics are added to the
training logs (`log`), so they reach every reporter Trainer has (TensorBoard, W&B, the console).

Single process only: under DDP/FSDP/DeepSpeed the gradients are not plain tensors the flat buffer can own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from transformers import Trainer

from fslib.engine.surgeons.stochastic import StochasticGradientSurgery
from fslib.engine.surgery import FlatGradients

__all__ = ["SurgeryTrainer"]


class SurgeryTrainer(Trainer):
    """`transformers.Trainer` with stochastic gradient surgery between the backward pass and the clipping.

    oracle_batches: language -> a collated batch (a dict of tensors, as the model takes it), or a callable
        `language -> batch` (e.g. drawing a random batch of that language's shots each time).
    oracle_languages: the languages to draw from (default: the keys of `oracle_batches`).
    surgery_alpha: probability of a surgery per application (1.0 for NER/POS, 0.1 for TyDiQA/XNLI in the paper).
    surgery_seed: seeds the coin and the language draws (independent of `args.seed`).
    surgery_granularity: "step" (once per optimiser step) or "micro_batch" (after every micro-batch).
    Other arguments go to `transformers.Trainer`.
    """

    def __init__(self, *args, oracle_batches: Mapping[str, dict] | Callable[[str], dict],
                 oracle_languages: list[str] | None = None, surgery_alpha: float = 1.0, surgery_seed: int = 0,
                 surgery_granularity: str = "step", **kwargs):
        super().__init__(*args, **kwargs)
        if surgery_granularity not in ("step", "micro_batch"):
            raise ValueError(f"surgery_granularity must be 'step' or 'micro_batch', not {surgery_granularity!r}")
        if oracle_languages is None:
            if not isinstance(oracle_batches, Mapping):
                raise ValueError("oracle_languages is required when oracle_batches is a callable")
            oracle_languages = list(oracle_batches)
        if self.args.world_size > 1 or self.is_deepspeed_enabled or self.is_fsdp_enabled:
            raise ValueError("SurgeryTrainer supports single-process training only (no DDP, FSDP or DeepSpeed)")
        self.oracle_batches = oracle_batches
        self.oracle_languages = list(oracle_languages)
        self.surgery_alpha, self.surgery_seed, self.surgery_granularity = \
            surgery_alpha, surgery_seed, surgery_granularity
        self.flat_grads: FlatGradients | None = None
        self.surgeon: StochasticGradientSurgery | None = None
        self.surgery_log: list[dict] = []  # the statistics of every logging interval, also sent to `log`

    def _oracle_batch(self, lang: str) -> dict:
        if isinstance(self.oracle_batches, Mapping):
            if lang not in self.oracle_batches:
                raise KeyError(f"no oracle batch for language {lang!r}; batches for: {', '.join(self.oracle_batches)}")
            return self.oracle_batches[lang]
        return self.oracle_batches(lang)

    def _ensure_surgeon(self, model: torch.nn.Module) -> None:
        if self.surgeon is None:
            self.flat_grads = FlatGradients(list(model.parameters()))

            def oracle_loss(lang: str) -> torch.Tensor:
                inputs = self._prepare_inputs(dict(self._oracle_batch(lang)))
                with self.compute_loss_context_manager():
                    return self.compute_loss(model, inputs)

            self.surgeon = StochasticGradientSurgery(self.flat_grads, self.oracle_languages, self.surgery_alpha,
                                                     self.surgery_seed, oracle_loss,
                                                     backward=self.accelerator.backward)
        elif any(p.grad is None for p in self.flat_grads.parameters):
            self.flat_grads.attach()  # Trainer's model.zero_grad() set the gradients to None after the last step

    def training_step(self, model: torch.nn.Module, inputs: dict, num_items_in_batch=None) -> torch.Tensor:
        self._ensure_surgeon(model)
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.flat_grads.check_attached()
        if self.surgery_granularity == "micro_batch" or self.accelerator.sync_gradients:
            self.surgeon()
        return loss

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """Training logs (those with a `loss`) carry the surgery statistics of the interval since the last."""
        if "loss" in logs and self.surgeon is not None and self.surgeon.applications:
            stats = {f"surgery/{name}": value for name, value in self.surgeon.stats().items()}
            self.surgeon.reset_stats()
            self.surgery_log.append({"step": self.state.global_step, **stats})
            logs = {**logs, **stats}
        super().log(logs, *args, **kwargs)
