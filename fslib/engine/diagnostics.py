"""Gradient diagnostics (the paper's Figure 1): per-language gradients at a checkpoint and their cosine matrix.

English's gradient is averaged over N batches of its train set (the paper: 100), each target's is taken over
its K shots. Gradients are whole-model vectors (every trainable parameter). When the languages' gradients would
not fit in `max_exact_bytes` of host memory (48 languages x XLM-R large is ~100 GiB), each gradient is reduced
to a count sketch of `sketch_dim` coordinates first: inner products are preserved in expectation, with an
error of about |a||b|/sqrt(sketch_dim) (a cosine error near 0.001 at the default size).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pandas as pd
import torch

from fslib.core.languages import SOURCE_LANG
from fslib.engine.surgery import FlatGradients
from fslib.engine.training import autocast, to_device
from fslib.formats.seeds import stable_seed

if TYPE_CHECKING:
    from fslib.engine.stages import Experiment


def count_sketch(vector: torch.Tensor, dim: int, seed: int, chunk: int = 1 << 24) -> torch.Tensor:
    """A random signed hashing of `vector` into `dim` buckets; the same seed gives the same hashing."""
    out = torch.zeros(dim, dtype=torch.float32, device=vector.device)
    generator = torch.Generator(device=vector.device)
    for number, start in enumerate(range(0, vector.numel(), chunk)):
        part = vector[start:start + chunk].float()
        generator.manual_seed(seed + number)
        buckets = torch.randint(dim, part.shape, generator=generator, device=vector.device)
        signs = torch.randint(2, part.shape, generator=generator, device=vector.device) * 2 - 1
        out.index_add_(0, buckets, part * signs)
    return out


def cosine_matrix(vectors: torch.Tensor, chunk: int = 1 << 22) -> torch.Tensor:
    """Pairwise cosines of the rows of `vectors`, with inner products summed in float64 a chunk of columns at a
    time: fp32 sums over hundreds of millions of coordinates drift by ~1e-4 (a self-cosine of 1.0001)."""
    gram = torch.zeros(len(vectors), len(vectors), dtype=torch.float64)
    for start in range(0, vectors.shape[1], chunk):
        block = vectors[:, start:start + chunk].double()
        gram += block @ block.T
    norms = gram.diagonal().sqrt().clamp_min(1e-300)
    return (gram / torch.outer(norms, norms)).clamp(-1.0, 1.0)


def gradient_similarity(model: torch.nn.Module, batches: Mapping[str, Iterable[dict]], *,
                        device: torch.device | None = None, precision: str = "bf16", sketch_dim: int = 1 << 20,
                        max_exact_bytes: int = 8 << 30) -> pd.DataFrame:
    """Cosine similarity of the languages' mean gradients (over each language's batches of collated features),
    as a tidy table: lang_a, lang_b, cosine. The model is left as it was (eval mode, no gradient)."""
    device = device or next(model.parameters()).device
    model.to(device).eval()  # no dropout: the gradient of the checkpoint itself
    grads = FlatGradients(list(model.parameters()))
    sketch = len(batches) * grads.buffer.numel() * 4 > max_exact_bytes
    vectors = {}
    for lang, language_batches in batches.items():
        grads.zero_()
        count = 0
        for batch in language_batches:
            inputs, _ = to_device(dict(batch), device)
            with autocast(device, precision):
                model(**inputs).loss.backward()
            count += 1
        mean = grads.buffer / max(count, 1)
        vectors[lang] = count_sketch(mean, sketch_dim, seed=0) if sketch else mean.to("cpu", copy=True)
    model.zero_grad(set_to_none=True)
    langs = list(vectors)
    cosines = cosine_matrix(torch.stack([vectors[lang].cpu() for lang in langs]))
    return pd.DataFrame([(a, b, float(cosines[i, j])) for i, a in enumerate(langs) for j, b in enumerate(langs)],
                        columns=["lang_a", "lang_b", "cosine"])


def record_gradient_similarity(experiment: Experiment, model: torch.nn.Module) -> None:
    """The Figure 1 measurement for a co-training run's selected model, saved with the run."""
    c = experiment.config
    micro_batch = c.train_batch_size // c.grad_accum
    source = experiment.features(SOURCE_LANG, "train")
    order = torch.randperm(len(source), generator=torch.Generator().manual_seed(stable_seed("similarity", c.seed)
                                                                                % 2**63)).tolist()

    def source_batches():
        for number in range(c.similarity_source_batches):
            chosen = [order[(number * micro_batch + i) % len(order)] for i in range(micro_batch)]
            yield experiment.collator(source.select(chosen).to_list())

    shots = {lang: [experiment.collator(experiment.features(lang, "shots").to_list())] for lang in experiment.targets}
    batches = {SOURCE_LANG: source_batches(), **shots}
    experiment.tables["gradient_similarity"] = gradient_similarity(model, batches, device=experiment.device,
                                                                   precision=c.precision)
