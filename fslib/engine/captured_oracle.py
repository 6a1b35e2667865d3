"""The oracle forward/backward of the gradient surgery, replayed from CUDA graphs.

Why: on a GPU the oracle pass over a handful of examples is bound by kernel launches (Python, the dispatcher,
one launch per operation), not by arithmetic: on an H100 with XLM-R large a 5-example pass cost nearly as much as
a 32-example training step (bench/README.md). The oracle batches of a run keep their shapes (a target's K shots
never change), so the pass for each batch shape is captured once as a CUDA graph - zeroing the flat gradient
buffer, the forward under autocast, the loss and the backward into the buffer - and then replayed with one
launch after copying the batch into the graph's input tensors.

Batches whose content changes (the source's random oracle batch) are right-padded to a multiple of
`pad_multiple` tokens, so that a few graphs cover every length: padding is masked out of attention, position ids
and the token-level loss, so it changes nothing but rounding. Question answering is the exception: its loss
spans every position, padded ones included, so its batches are captured at their exact shapes only.

Falls back to the eager pass (with the reason in `fallback_reason`) off CUDA and beyond `max_graphs` distinct
shapes. fp16, whose loss scaling belongs to the training loop, keeps the surgery's own eager pass (`capturable`).
A model whose forward synchronises with the host cannot be captured: that is an error that says to set
`cuda_graphs: false` (a failed capture leaves PyTorch's CUDA generator unusable, so there is no quiet fallback).
Capture needs the caller's autograd graph released (`optimisation_step` deletes its loss after the backward):
PyTorch ties each parameter's gradient accumulator to the stream it was made on while a graph keeps it alive.
Dropout stays random: the graphs draw from the CUDA generator as eager kernels do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fslib.engine.features import IGNORE
from fslib.engine.surgery import FlatGradients
from fslib.store.config import CAPTURED_PRECISIONS

# how each sequence input is padded on the right; a batch holding any other 2-D input is captured unpadded
PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "labels": IGNORE}
EXACT_SHAPE_KEYS = ("start_positions",)  # QA: the loss covers padded positions too, so no padding


def capturable(device: torch.device, precision: str) -> bool:
    """Whether training on `device` at `precision` replays the oracle pass from CUDA graphs."""
    return device.type == "cuda" and precision in CAPTURED_PRECISIONS


class CapturedOraclePass:
    """`pass_(batch)` writes the oracle gradient of `batch` (CPU tensors, as the collator makes them) into the
    flat buffer the gradients point at (`grads.attached`: the surgeon's oracle buffer), overwriting it, as
    `grads.zero_(); model(**batch).loss.backward()` would. A graph writes into the buffer it was captured on.

    precision: "bf16" or "fp32" (see `capturable`). The model must stay in training mode and keep its parameters
    in place (AdamW and `load_state_dict` update them in place)."""

    def __init__(self, model: torch.nn.Module, grads: FlatGradients, precision: str, *, pad_multiple: int = 32,
                 max_graphs: int = 16, warmup_passes: int = 2):
        if precision not in CAPTURED_PRECISIONS:
            raise ValueError(f"precision {precision!r}: the captured oracle pass takes "
                             f"{' or '.join(CAPTURED_PRECISIONS)}")
        self.model, self.grads, self.precision = model, grads, precision
        self.pad_multiple, self.max_graphs, self.warmup_passes = pad_multiple, max_graphs, warmup_passes
        self.pad_token_id = getattr(getattr(model, "config", None), "pad_token_id", None)
        self.device = grads.buffer.device
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor]]] = {}
        self.fallback_reason = None if self.device.type == "cuda" else f"no CUDA device ({self.device.type})"
        self.replays = self.eager_passes = 0
        if self.fallback_reason is None:
            self.pool = torch.cuda.graph_pool_handle()  # one pool for all graphs: they never run at once
            self.stream = torch.cuda.Stream(self.device)

    # ---- the pass ----------------------------------------------------------------------------------------------
    def _forward_backward(self, inputs: dict[str, torch.Tensor]) -> None:
        dtype = torch.bfloat16 if self.precision == "bf16" else None
        # no autocast cache: casts made inside a capture must not outlive it
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None, cache_enabled=False):
            loss = self.model(**inputs).loss
        loss.backward()

    def eager(self, batch: dict[str, torch.Tensor]) -> None:
        self.eager_passes += 1
        self.grads.zero_()
        inputs = {key: value.to(self.device) for key, value in batch.items()}
        if self.device.type == "cuda":
            self._forward_backward(inputs)
        else:  # fp32 on the CPU, as training does there
            self.model(**inputs).loss.backward()

    def __call__(self, batch: dict[str, torch.Tensor]) -> None:
        if self.fallback_reason is not None:
            return self.eager(batch)
        batch = self.padded(batch)
        key = tuple((name, tuple(value.shape), value.dtype) for name, value in sorted(batch.items()))
        if key not in self.graphs:
            if len(self.graphs) >= self.max_graphs:
                return self.eager(batch)  # a new shape beyond the cap: eager, the graphs stay
            try:
                self.graphs[key] = self._capture(batch)
            except RuntimeError as error:  # e.g. a host sync inside the model's forward
                # a failed capture leaves the CUDA generator unusable (PyTorch 2.11), so no eager fallback here
                raise RuntimeError(f"the oracle pass could not be captured as a CUDA graph ({error}); "
                                   "run with cuda_graphs: false") from error
        graph, static = self.graphs[key]
        for name, value in batch.items():
            static[name].copy_(value, non_blocking=True)
        graph.replay()
        self.replays += 1

    def padded(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Right-pad the sequence inputs to a multiple of `pad_multiple` (see the module's docstring)."""
        if "input_ids" not in batch or self.pad_token_id is None or any(key in batch for key in EXACT_SHAPE_KEYS):
            return batch
        length = batch["input_ids"].shape[1]
        extra = -length % self.pad_multiple
        sequences = {key for key, value in batch.items() if value.dim() == 2 and value.shape[1] == length}
        if extra == 0 or not sequences <= {"input_ids", *PAD_VALUES}:
            return batch
        pad_values = {"input_ids": self.pad_token_id, **PAD_VALUES}
        return {key: torch.nn.functional.pad(value, (0, extra), value=pad_values[key]) if key in sequences else value
                for key, value in batch.items()}

    def _capture(self, batch: dict[str, torch.Tensor]) -> tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor]]:
        static = {key: value.to(self.device) for key, value in batch.items()}
        # warm-up passes on the capture stream first (lazy initialisations such as cuBLAS workspaces), as
        # PyTorch's documentation asks; their gradients are overwritten by the zeroing inside the graph
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.stream):
            for _ in range(self.warmup_passes):
                self._forward_backward(static)
        torch.cuda.current_stream(self.device).wait_stream(self.stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool, stream=self.stream):
            self.grads.zero_()  # the buffer the gradients point at: the surgeon's oracle buffer
            self._forward_backward(static)
        return graph, static

    def stats(self) -> dict[str, object]:
        return {"graphs": len(self.graphs), "replays": self.replays, "eager_passes": self.eager_passes,
                "fallback_reason": self.fallback_reason}


def oracle_pass(model: torch.nn.Module, grads: FlatGradients, precision: str,
                oracle: Callable[[str], dict]) -> Callable[[str], None]:
    """`pass_(lang)`: the oracle gradient of `oracle(lang)` (a collated batch, with its "langs" list) written into
    `grads`, replayed from CUDA graphs; `pass_.captured` holds the graphs and their statistics."""
    captured = CapturedOraclePass(model, grads, precision)

    def pass_(lang: str) -> None:
        batch = dict(oracle(lang))
        batch.pop("langs", None)
        captured(batch)
    pass_.captured = captured
    return pass_
