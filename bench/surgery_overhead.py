#!/usr/bin/env python
"""What does stochastic gradient surgery cost per training step?

Times the training steps of co-training on the SAME batches, from the SAME initial weights, four ways:

- `naive`            naive-co-train: no surgery;
- `gradient`         gradient-co-train, alpha=1 (NER/POS): `fslib.surgery.FlatGradients` +
                     `StochasticGradientSurgery`, exactly as `fslib.training.train` plugs them in;
- `reference`        the same algorithm written the usual way, `fslib.surgery_reference.ReferenceSurgery` (clone and
                     concatenate, deep copy of the model, Python `if`), plugged in at the same place;
- `gradient_a0.1`    gradient-co-train, alpha=0.1 (TyDiQA/XNLI): the coin mostly says no and the oracle
                     forward/backward is skipped.

and prints/saves the ratios gradient/naive (target <= 1.3 on CPU), gradient/reference (target < 1) and
gradient(alpha=0.1)/naive. The model is a small, randomly initialised XLM-R with a 7-label token-classification
head; the data are synthetic NER-like features (lengths 20-60 drawn once with a fixed seed), collated by the kit's
own `Collator` and batched by the kit's own `batches` (length-grouped, dynamically padded); the oracle batches are
built as `fslib.stages.Run.oracle_batches` builds them (a target's K shots as one batch; English: a random source
batch of min(K, micro-batch) examples). Everything is generated once, before any timing.

The step: `fslib.training.train` has no per-step hook to time, so `train_step` below mirrors its inner loop
line by line (forward under the same autocast, the isfinite check, backward, surgery, clip on the flat buffer's
parameters, AdamW, linear schedule, zeroing the flat buffer, the `loss.item()` of the progress bar). Unless
`--no-check`, the bench first runs `train()` itself and the mirror for a few steps from the same weights and
checks that they end with identical parameters.

Also (unless `--no-profile`): a breakdown of where the time of one gradient-co-train step goes (the surgery call
replayed piece by piece), micro-benchmarks of cheaper alternatives for the surgery's buffer passes, and the cost
of building an English oracle batch the way `fslib.stages` does (Dataset.select + to_list + collate, per call).

    .venv/bin/python bench/surgery_overhead.py [--device auto|cpu|cuda] [--steps 25] [--repeats 3] [--bf16]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import (  # noqa: E402
    XLMRobertaConfig,
    XLMRobertaForTokenClassification,
    XLMRobertaTokenizer,
    get_linear_schedule_with_warmup,
)

from fslib.features import IGNORE, Collator  # noqa: E402
from fslib.languages import SOURCE_LANG  # noqa: E402
from fslib.surgery import EPS, FlatGradients, StochasticGradientSurgery  # noqa: E402
from fslib.surgery_reference import ReferenceSurgery  # noqa: E402
from fslib.tasks import NER_LABELS  # noqa: E402
from fslib.training import (  # noqa: E402
    StageSettings,
    TrainingDiverged,
    autocast,
    batches,
    optimizer_for,
    to_device,
    train,
)

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("ar", "de", "es", "hi", "sw", "zh")  # six NER target languages (names only: the data are synthetic)
MODEL_CONFIG = dict(  # XLM-R-shaped, small enough for a CPU; xlm-roberta-large: 1024 / 24 / 16 / 4096 / 250002
    vocab_size=8000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
    max_position_embeddings=514, type_vocab_size=1, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
)
SURGERY_SEED = 1234
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


# ---- set-up ---------------------------------------------------------------------------------------------------
def synthetic_tokenizer(vocab_size: int) -> XLMRobertaTokenizer:
    """An XLM-R tokenizer with a made-up vocabulary: only its special ids and padding are used (by `Collator`)."""
    pieces = [(token, 0.0) for token in SPECIAL_TOKENS]
    pieces += [(f"\u2581p{i}", -float(i + 1)) for i in range(vocab_size - len(SPECIAL_TOKENS))]
    return XLMRobertaTokenizer(vocab=pieces)


def synthetic_features(count: int, lang: str, generator: torch.Generator, min_len: int, max_len: int,
                       vocab_size: int, tokenizer) -> list[dict]:
    """NER-like features as `fslib.features` lays them out: <s> ... </s>, a label on the first sub-word of each
    word (mostly "O"), IGNORE elsewhere; total lengths uniform in [min_len, max_len]."""
    features = []
    label_weights = torch.tensor([0.8] + [0.2 / (len(NER_LABELS) - 1)] * (len(NER_LABELS) - 1))
    for _ in range(count):
        length = int(torch.randint(min_len, max_len + 1, (), generator=generator))
        inner = length - 2
        ids = torch.randint(len(SPECIAL_TOKENS), vocab_size, (inner,), generator=generator).tolist()
        first_piece = torch.rand(inner, generator=generator) < 0.7
        first_piece[0] = True
        tags = torch.multinomial(label_weights, inner, replacement=True, generator=generator).tolist()
        labels = [tag if first else IGNORE for tag, first in zip(tags, first_piece.tolist())]
        features.append({"input_ids": [tokenizer.cls_token_id] + ids + [tokenizer.sep_token_id],
                         "attention_mask": [1] * length, "labels": [IGNORE] + labels + [IGNORE], "lang": lang})
    return features


def co_training_features(n_batches: int, args, generator: torch.Generator, tokenizer) -> tuple[Dataset, Dataset]:
    """The co-training set (English train + every target's K shots, shuffled together by `batches`), sized to
    give exactly `n_batches` full batches; and the English part on its own (for the English oracle batches)."""
    shots = [f for lang in TARGETS[:args.targets] for f in
             synthetic_features(args.shots, lang, generator, args.min_len, args.max_len, args.vocab, tokenizer)]
    n_english = n_batches * args.batch_size - len(shots)
    if n_english < args.batch_size:
        raise SystemExit("too few steps for this many shots: raise --steps")
    english = synthetic_features(n_english, SOURCE_LANG, generator, args.min_len, args.max_len, args.vocab,
                                 tokenizer)
    return Dataset.from_list(english + shots), Dataset.from_list(english)


class Oracles:
    """The oracle batches as `fslib.stages.Run.oracle_batches` makes them: a target's K shots (collated once), or
    for English a random batch of min(K, micro-batch) source examples. The English batches are drawn once up
    front (a seeded sequence); each trainer gets its own `view()`, a callable `oracle(lang)` -> batch with its own
    place in that sequence, so every variant sees the same oracle batches."""

    def __init__(self, data: Dataset, english: Dataset, collator, k: int, micro_batch: int, n_english: int,
                 seed: int):
        rows = data.to_list()
        self.fixed = {lang: collator([row for row in rows if row["lang"] == lang])
                      for lang in sorted(set(data["lang"])) if lang != SOURCE_LANG}
        generator = torch.Generator().manual_seed(seed)
        size = min(k, micro_batch)
        self.english = [collator(english.select(torch.randperm(len(english), generator=generator)[:size].tolist())
                                 .to_list()) for _ in range(n_english)]

    def view(self):
        english_calls = 0

        def oracle(lang: str) -> dict:
            nonlocal english_calls
            if lang == SOURCE_LANG:
                english_calls += 1
                return dict(self.english[(english_calls - 1) % len(self.english)])
            return dict(self.fixed[lang])  # a shallow copy: to_device pops "langs"
        return oracle


@dataclass(frozen=True)
class Variant:
    name: str
    surgery: str  # "none" | "efficient" | "reference"
    alpha: float = 1.0


VARIANTS = (Variant("naive", "none"), Variant("gradient", "efficient", 1.0), Variant("reference", "reference", 1.0),
            Variant("gradient_a0.1", "efficient", 0.1))


class Trainer:
    """One variant's training state, built as `fslib.training.train` builds it (optimizer_for, the linear
    schedule, FlatGradients, the surgery built from the flat gradients), ready to step."""

    def __init__(self, variant: Variant, template: torch.nn.Module, settings: StageSettings, total_steps: int,
                 oracles: Oracles, languages: list[str], device: torch.device):
        self.variant, self.settings, self.device = variant, settings, device
        self.model = model = copy.deepcopy(template).to(device).train()
        self.optimizer = optimizer_for(model, settings)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(settings.warmup_ratio * total_steps), total_steps)
        self.oracle = oracle = oracles.view()

        def oracle_loss(module: torch.nn.Module, lang: str) -> torch.Tensor:  # as fslib.stages.Run.surgery
            inputs, _ = to_device(oracle(lang), device)
            with autocast(device, settings.bf16):
                return module(**inputs).loss

        if variant.surgery == "reference":
            # the usual way: per-parameter .grad tensors, zero_grad(set_to_none=True); ReferenceSurgery replaces
            # every .grad with a clone, so it cannot sit on a flat buffer (grads.zero_() would no longer reach them)
            self.grads = None
            self.parameters = [p for p in model.parameters() if p.requires_grad]
            self.surgeon = ReferenceSurgery(model, languages, variant.alpha, SURGERY_SEED, oracle_loss)
            self.zero = lambda: self.optimizer.zero_grad(set_to_none=True)
        else:
            self.grads = FlatGradients(list(model.parameters()))
            self.parameters = self.grads.parameters
            self.surgeon = (StochasticGradientSurgery(self.grads, languages, variant.alpha, SURGERY_SEED,
                                                      lambda lang: oracle_loss(model, lang))
                            if variant.surgery == "efficient" else None)
            self.zero = self.grads.zero_

    def step(self, batch: dict) -> float:
        """One optimisation step; mirrors the body of fslib.training.train's step loop (grad_accum=1,
        surgery_granularity="step")."""
        inputs, langs = to_device(dict(batch), self.device)
        with autocast(self.device, self.settings.bf16):
            loss = self.model(**inputs).loss
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss.item()}; languages in the batch: {', '.join(sorted(set(langs)))}")
        (loss / 1).backward()
        if self.surgeon:
            self.surgeon()
        torch.nn.utils.clip_grad_norm_(self.parameters, self.settings.max_grad_norm, foreach=True)
        self.optimizer.step()
        self.scheduler.step()
        self.zero()
        return float(f"{loss.item():.3f}")  # train() formats loss.item() for the progress bar every step

    @property
    def surgeries(self) -> int:
        return self.surgeon.surgeries if self.surgeon else 0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- the mirror against train() -------------------------------------------------------------------------------
def check_mirror(template, settings, collator, args, tokenizer, device, languages) -> dict:
    """`train()` itself and `Trainer.step` from the same weights and seeds, a few steps of gradient-co-train
    (alpha=1) and of naive-co-train: the parameters must come out identical."""
    steps = 2
    data, english = co_training_features(steps, args, torch.Generator().manual_seed(args.seed + 7), tokenizer)
    oracles = Oracles(data, english, collator, args.shots, args.batch_size, steps, args.seed + 8)
    result = {"compared_with": "fslib.training.train", "steps": steps, "variants": {}}
    for variant in (VARIANTS[1], VARIANTS[0]):
        real = copy.deepcopy(template)

        def factory(grads, model=real, oracle=oracles.view()):
            def oracle_loss(lang):
                inputs, _ = to_device(oracle(lang), device)
                with autocast(device, settings.bf16):
                    return model(**inputs).loss
            return StochasticGradientSurgery(grads, languages, variant.alpha, SURGERY_SEED, oracle_loss)

        torch.manual_seed(args.seed)
        train(real, data, settings, collator=collator, seed=args.seed, device=device,
              surgery=factory if variant.surgery == "efficient" else None, progress=False)

        torch.manual_seed(args.seed)
        mirror = Trainer(variant, template, settings, steps, oracles, languages, device)
        micro_batches = iter(batches(data, args.batch_size, collator, torch.Generator().manual_seed(args.seed)))
        for _, batch in zip(range(steps), micro_batches):  # iter() draws the loader's seed as train() does
            mirror.step(batch)
        diffs = [float((a.detach() - b.detach()).abs().max()) for a, b in
                 zip(real.parameters(), mirror.model.parameters())]
        result["variants"][variant.name] = {"identical": max(diffs) == 0.0, "max_abs_diff": max(diffs)}
    result["identical"] = all(v["identical"] for v in result["variants"].values())
    return result


# ---- timing -----------------------------------------------------------------------------------------------------
def time_interleaved(template, settings, train_batches, oracles, languages, device, warmup: int,
                     repeat: int) -> dict[str, dict]:
    """One repetition: a trainer per variant, all from the same initial weights, stepped in turn on each batch
    (the order rotates from one batch to the next), so that a burst of load from another process on a shared
    machine falls on every variant alike. Wall-clock and process CPU seconds per step."""
    gc.collect()
    trainers = {}
    for variant in VARIANTS:
        torch.manual_seed(0)
        trainers[variant.name] = Trainer(variant, template, settings, len(train_batches), oracles, languages, device)
    runs = {name: {"times_s": [], "cpu_times_s": []} for name in trainers}
    surgeries_before = dict.fromkeys(trainers, 0)
    for index, batch in enumerate(train_batches):
        if index == warmup:
            surgeries_before = {name: trainer.surgeries for name, trainer in trainers.items()}
        shift = (index + repeat) % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            trainer = trainers[variant.name]
            sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            loss = trainer.step(batch)
            sync(device)
            if index >= warmup:
                runs[variant.name]["times_s"].append(time.perf_counter() - start)
                runs[variant.name]["cpu_times_s"].append(time.process_time() - cpu_start)
            runs[variant.name]["final_loss"] = loss
    for name, trainer in trainers.items():
        run = runs[name]
        run["surgeries"] = trainer.surgeries - surgeries_before[name]
        if isinstance(trainer.surgeon, ReferenceSurgery):
            run["projections"] = trainer.surgeon.projections
        elif trainer.surgeon:
            stats = trainer.surgeon.stats()
            run["conflict_rate"] = stats["conflict_rate"]
            run["oracle_counts"] = {key[len("oracle_"):]: int(value) for key, value in stats.items()
                                    if key.startswith("oracle_")}
    return runs


def peak_memory(variant, template, settings, train_batches, oracles, languages, device, steps: int) -> int:
    """CUDA only: torch.cuda.max_memory_allocated over a few steps of one variant on its own (the timed
    repetitions hold every variant at once, so their peak says nothing per variant)."""
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    trainer = Trainer(variant, template, settings, len(train_batches), oracles, languages, device)
    for batch in train_batches[:steps]:
        trainer.step(batch)
    sync(device)
    peak = torch.cuda.max_memory_allocated(device)
    del trainer
    return peak


def summarise(runs: list[dict]) -> dict:
    """Per step, the median over the repetitions; then mean/median/min over the steps (ms)."""
    per_step = [statistics.median(values) * 1e3 for values in zip(*(run["times_s"] for run in runs))]
    summary = {"mean_ms": statistics.fmean(per_step), "median_ms": statistics.median(per_step),
               "min_ms": min(per_step), "max_ms": max(per_step),
               # per step, the fastest repetition: the least disturbed by other processes
               "mean_of_step_minima_ms": statistics.fmean(min(values) * 1e3 for values in
                                                          zip(*(run["times_s"] for run in runs))),
               "per_repeat_mean_ms": [statistics.fmean(run["times_s"]) * 1e3 for run in runs],
               "per_step_median_ms": per_step, "surgeries_per_repeat": [run["surgeries"] for run in runs],
               # process CPU time (all threads): less sensitive than wall time to other processes on a shared
               # machine, though it counts the intra-op threads' spin-waiting too
               "cpu_time_mean_ms": statistics.fmean(
                   statistics.median(values) * 1e3 for values in zip(*(run["cpu_times_s"] for run in runs)))}
    for key in ("conflict_rate", "oracle_counts", "projections", "final_loss"):
        if key in runs[-1]:
            summary[key] = runs[-1][key]
    return summary


def paired_ratio(runs: dict[str, list[dict]], a: str, b: str) -> float:
    """Median over (repetition, step) of t_a / t_b, the two measured back to back on the same batch."""
    return statistics.median(ta / tb for run_a, run_b in zip(runs[a], runs[b])
                             for ta, tb in zip(run_a["times_s"], run_b["times_s"]))


# ---- where the time goes ----------------------------------------------------------------------------------------
class Clock:
    def __init__(self, device):
        self.device, self.totals, self.start = device, Counter(), None

    def __enter__(self):
        sync(self.device)
        self.start = time.perf_counter()
        return self

    def lap(self, name: str) -> None:
        sync(self.device)
        now = time.perf_counter()
        self.totals[name] += now - self.start
        self.start = now

    def __exit__(self, *exc):
        return False


def breakdown(template, settings, train_batches, oracles, languages, device, warmup, steps) -> dict:
    """A gradient-co-train (alpha=1) run on the timed batches, with the surgery call replayed piece by piece: the
    same tensor operations as `StochasticGradientSurgery.__call__`, on the surgeon's own buffers and generator
    (keep in step with fslib/surgery.py). Milliseconds per step, averaged over the timed steps."""
    torch.manual_seed(0)
    trainer = Trainer(VARIANTS[1], template, settings, len(train_batches), oracles, languages, device)
    surgeon, grads, model = trainer.surgeon, trainer.grads, trainer.model
    clock = Clock(device)
    timed = 0
    for index, batch in enumerate(train_batches[:warmup + steps]):
        if index == warmup:
            clock.totals.clear()
        timed += index >= warmup
        with clock:
            inputs, _ = to_device(dict(batch), device)
            with autocast(device, settings.bf16):
                loss = model(**inputs).loss
            bool(torch.isfinite(loss))
            clock.lap("train forward")
            loss.backward()
            clock.lap("train backward")
            # --- StochasticGradientSurgery.__call__, piece by piece
            surgeon.applications += 1
            lang = surgeon.rng.choice(surgeon.languages)
            if surgeon.rng.random() >= surgeon.alpha:  # alpha=1: never
                raise RuntimeError("the breakdown expects alpha=1")
            surgeon.surgeries += 1
            surgeon.oracle_counts[lang] += 1
            flat = grads.buffer
            surgeon.saved.copy_(flat)
            clock.lap("surgery: copy g_train out")
            flat.zero_()
            clock.lap("surgery: zero buffer")
            oracle_inputs, _ = to_device(trainer.oracle(lang), device)
            clock.lap("surgery: oracle batch (pre-collated) to device")
            with autocast(device, settings.bf16):
                oracle_loss = model(**oracle_inputs).loss
            clock.lap("surgery: oracle forward")
            oracle_loss.backward()
            clock.lap("surgery: oracle backward")
            grads.check_attached()
            clock.lap("surgery: check_attached")
            dot = torch.dot(surgeon.saved, flat)
            oracle_norm2 = torch.dot(flat, flat)
            coefficient = dot.clamp(max=0) / (oracle_norm2 + EPS)
            clock.lap("surgery: dot + |g_o|^2")
            surgeon._conflicts += (dot < 0).float()
            surgeon._cosine_sum += dot / (surgeon.saved.norm() * oracle_norm2.sqrt() + EPS)
            clock.lap("surgery: statistics (|g_t| for the cosine)")
            surgeon.saved.addcmul_(flat, coefficient, value=-1.0)
            clock.lap("surgery: project (addcmul_)")
            flat.copy_(surgeon.saved)
            clock.lap("surgery: copy back")
            # --- the rest of the step
            torch.nn.utils.clip_grad_norm_(trainer.parameters, settings.max_grad_norm, foreach=True)
            clock.lap("clip")
            trainer.optimizer.step()
            trainer.scheduler.step()
            clock.lap("AdamW + schedule")
            grads.zero_()
            f"{loss.item():.3f}"
            clock.lap("zero + loss.item()")
    per_step = {name: seconds * 1e3 / timed for name, seconds in clock.totals.items()}
    surgery = sum(v for k, v in per_step.items() if k.startswith("surgery:"))
    total = sum(per_step.values())
    return {"ms_per_step": per_step, "surgery_ms": surgery, "step_ms": total,
            "surgery_buffer_passes_ms": sum(v for k, v in per_step.items() if k.startswith("surgery:") and
                                            ("copy" in k or "zero" in k or "dot" in k or "statistics" in k
                                             or "project" in k)),
            "oracle_forward_backward_ms": per_step["surgery: oracle forward"] + per_step["surgery: oracle backward"],
            "n_parameters": grads.buffer.numel()}


def time_op(fn, device, repeats: int = 30) -> float:
    """Median ms of `fn()`."""
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def buffer_alternatives(n: int, device: torch.device) -> dict:
    """The surgery's passes over gradient-sized buffers, as written now and as they could be written."""
    generator = torch.Generator(device=device).manual_seed(0)
    flat = torch.randn(n, device=device, generator=generator)
    saved = torch.randn(n, device=device, generator=generator)
    pair = torch.randn(2, n, device=device, generator=generator)  # g_train and g_oracle as rows of one storage
    coefficient = torch.tensor(-0.01, device=device)
    ops = {
        "copy_ (one buffer to the other)": lambda: saved.copy_(flat),
        "zero_": lambda: flat.zero_(),
        "dot": lambda: torch.dot(saved, flat),
        "norm": lambda: saved.norm(),
        "now: addcmul_ into saved, then copy_ back": lambda: (saved.addcmul_(flat, coefficient, value=-1.0),
                                                             flat.copy_(saved)),
        "fused: torch.addcmul(saved, flat, coef, value=-1, out=flat)": lambda: torch.addcmul(
            saved, flat, coefficient, value=-1.0, out=flat),
        "now: dot(t,o) + dot(o,o) + norm(t) (3 passes)": lambda: (torch.dot(saved, flat), torch.dot(flat, flat),
                                                                  saved.norm()),
        "one pass: Gram matrix of a (2, n) buffer, pair @ pair.T": lambda: pair @ pair.T,
    }
    return {name: time_op(fn, device) for name, fn in ops.items()}


def stages_oracle_batch_cost(english: Dataset, collator, k: int, micro_batch: int) -> dict:
    """What `fslib.stages.Run.oracle_batches` does per English oracle call (a random Dataset.select, to_list,
    collate), against handing out a batch collated in advance."""
    generator = torch.Generator().manual_seed(0)
    size = min(k, micro_batch)

    def from_dataset():
        chosen = torch.randperm(len(english), generator=generator)[:size].tolist()
        return collator(english.select(chosen).to_list())

    ready = from_dataset()
    return {"select_to_list_collate_ms": time_op(from_dataset, torch.device("cpu"), 50),
            "precollated_copy_ms": time_op(lambda: dict(ready), torch.device("cpu"), 50)}


# ---- reporting --------------------------------------------------------------------------------------------------
def machine_info(device: torch.device) -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "cpu": platform.processor() or platform.machine(), "device": device.type,
            "load_average_1_5_15_min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = info["cpu"]
    return info


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant, interleaved (default 3)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only, as in training)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--shots", type=int, default=5, help="K, shots per target language")
    parser.add_argument("--targets", type=int, default=6, choices=range(1, len(TARGETS) + 1), metavar="N")
    parser.add_argument("--min-len", type=int, default=20)
    parser.add_argument("--max-len", type=int, default=60)
    parser.add_argument("--vocab", type=int, default=MODEL_CONFIG["vocab_size"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-check", action="store_true", help="skip the mirror-vs-train() check")
    parser.add_argument("--no-profile", action="store_true", help="skip the breakdown and micro-benchmarks")
    parser.add_argument("--profile-steps", type=int, default=8, help="steps of the breakdown (default 8)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default bench/results/surgery_overhead-<device>.json)")
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    out = args.out or ROOT / "bench" / "results" / f"surgery_overhead-{device.type}.json"
    if args.bf16 and device.type != "cuda":
        print("note: --bf16 is ignored on CPU (training autocasts on CUDA only)", file=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    began = time.perf_counter()
    load_before = machine_info(device)["load_average_1_5_15_min"]

    tokenizer = synthetic_tokenizer(args.vocab)
    collator = Collator("ner", tokenizer)
    config = XLMRobertaConfig(**{**MODEL_CONFIG, "vocab_size": args.vocab}, pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              num_labels=len(NER_LABELS), id2label=dict(enumerate(NER_LABELS)),
                              label2id={label: i for i, label in enumerate(NER_LABELS)})
    torch.manual_seed(args.seed)
    template = XLMRobertaForTokenClassification(config)
    n_parameters = sum(p.numel() for p in template.parameters() if p.requires_grad)
    settings = StageSettings(epochs=1, batch_size=args.batch_size, learning_rate=2e-5, bf16=args.bf16)  # NER
    languages = list(TARGETS[:args.targets]) + [SOURCE_LANG]  # oracle_include_source=True (the default)

    n_batches = args.warmup + args.steps
    data, english = co_training_features(n_batches, args, torch.Generator().manual_seed(args.seed), tokenizer)
    train_batches = list(batches(data, args.batch_size, collator, torch.Generator().manual_seed(args.seed)))
    oracles = Oracles(data, english, collator, args.shots, args.batch_size, n_batches, args.seed + 1)
    assert len(train_batches) == n_batches and all(len(b["langs"]) == args.batch_size for b in train_batches)

    check = None
    if not args.no_check:
        check = check_mirror(template, settings, collator, args, tokenizer, device, languages)
        print(f"mirror of train(): {'identical parameters' if check['identical'] else 'DIFFERS'} after "
              f"{check['steps']} steps " + ", ".join(f"{k}: max|diff|={v['max_abs_diff']:.1e}"
                                                      for k, v in check["variants"].items()))

    runs: dict[str, list[dict]] = {variant.name: [] for variant in VARIANTS}
    for repeat in range(args.repeats):
        for name, run in time_interleaved(template, settings, train_batches, oracles, languages, device,
                                          args.warmup, repeat).items():
            runs[name].append(run)
        print(f"repeat {repeat + 1}/{args.repeats} done ({time.perf_counter() - began:.0f} s)", flush=True)
    results = {name: summarise(variant_runs) for name, variant_runs in runs.items()}
    if device.type == "cuda":
        for variant in VARIANTS:
            results[variant.name]["peak_memory_bytes"] = peak_memory(
                variant, template, settings, train_batches, oracles, languages, device, args.warmup + 3)

    pairs = (("gradient", "naive"), ("gradient", "reference"), ("gradient_a0.1", "naive"), ("reference", "naive"))
    ratios = {statistic: {f"{a}/{b}": results[a][key] / results[b][key] for a, b in pairs}
              for statistic, key in (("mean", "mean_ms"), ("median", "median_ms"),
                                     ("step_minima", "mean_of_step_minima_ms"), ("cpu_time", "cpu_time_mean_ms"))}
    ratios["paired"] = {f"{a}/{b}": paired_ratio(runs, a, b) for a, b in pairs}
    headline = ratios["mean"]
    # with few steps the number of alpha=0.1 surgeries in the window is small and discrete: also give what
    # alpha=0.1 costs on average, naive + 0.1 * (gradient - naive)
    expected_a01 = 1.0 + 0.1 * (headline["gradient/naive"] - 1.0)
    limit = 1.3
    targets = {f"gradient/naive <= {limit} (CPU)" if device.type == "cpu" else "gradient/naive (no target on CUDA)":
               headline["gradient/naive"] <= limit,
               "gradient/reference < 1": headline["gradient/reference"] < 1.0}

    gradient_bytes = n_parameters * 4  # fp32 gradients (bf16 autocast keeps fp32 parameters and gradients)
    memory = {"gradient_bytes": gradient_bytes,
              "note": "computed from sizes; G = one fp32 gradient-sized buffer, on top of the model's own gradients",
              "gradient_extra_bytes": gradient_bytes,  # StochasticGradientSurgery.saved; the flat buffer IS .grad
              "gradient_extra_buffers": "1 G, persistent (surgeon.saved); scalars otherwise",
              "reference_extra_bytes_peak": 5 * gradient_bytes,
              "reference_extra_buffers": "transient, during each call: g_train (1 G after the clones are "
                                         "concatenated), the deep copy's parameters (1 G) and gradients (1 G), "
                                         "g_oracle (1 G, plus 1 G of clones while concatenating) = 5 G; 6 G when it "
                                         "projects (the new g_train and a temporary)"}
    if device.type == "cuda":
        naive_peak = results["naive"]["peak_memory_bytes"]
        memory["cuda_peak_bytes"] = {name: r["peak_memory_bytes"] for name, r in results.items()}
        memory["cuda_peak_minus_naive_bytes"] = {name: r["peak_memory_bytes"] - naive_peak
                                                 for name, r in results.items()}

    profile = None
    if not args.no_profile:
        profile = {"gradient_step_breakdown": breakdown(template, settings, train_batches, oracles, languages,
                                                        device, args.warmup, min(args.profile_steps, args.steps)),
                   "buffer_ops_ms": buffer_alternatives(n_parameters, device),
                   "stages_english_oracle_batch": stages_oracle_batch_cost(english, collator, args.shots,
                                                                          args.batch_size)}

    lengths = [int(b["input_ids"].shape[1]) for b in train_batches[args.warmup:]]
    payload = {
        "benchmark": "surgery_overhead",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine_info(device), "load_average_at_start": load_before},
        "config": {
            "model": {"class": "XLMRobertaForTokenClassification", "init": "random (torch.manual_seed(seed))",
                      **config.to_diff_dict(), "attn_implementation": template.config._attn_implementation,
                      "trainable_parameters": n_parameters},
            "task": "NER-like token classification", "labels": list(NER_LABELS),
            "batch_size": args.batch_size, "grad_accum": 1, "surgery_granularity": "step",
            "shots_per_target": args.shots, "targets": list(TARGETS[:args.targets]),
            "oracle_languages": languages, "oracle_batch_sizes": {
                **{lang: int(oracles.fixed[lang]["input_ids"].shape[0]) for lang in oracles.fixed},
                SOURCE_LANG: min(args.shots, args.batch_size)},
            "sequence_lengths": [args.min_len, args.max_len], "padded_lengths_timed_batches": lengths,
            "optimizer": "AdamW (fslib.training.optimizer_for), lr 2e-5, linear schedule, clip 1.0",
            "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats, "seed": args.seed,
            "surgery_seed": SURGERY_SEED, "bf16_autocast": bool(args.bf16 and device.type == "cuda"),
            "schedule": "per repetition, one trainer per variant, stepped in turn on each batch (order rotating)",
            "statistic": "per step, median over repeats; then mean/median over steps",
        },
        "mirror_check": check,
        "variants": results,
        "ratios": headline,
        "ratios_all_statistics": {
            "note": "mean: of the per-step medians over repeats (the headline; total time); median: of the same; "
                    "step_minima: mean of the per-step fastest repeat; cpu_time: process CPU time; paired: median "
                    "over (repeat, step) of the ratio of two steps run back to back on the same batch",
            **ratios},
        "expected_gradient_a0.1/naive": expected_a01,
        "targets_met": targets,
        "memory": memory,
        "profile": profile,
        "wall_s": time.perf_counter() - began,
    }
    write_json(out, payload)

    # ---- the table
    name_width = max(len(name) for name in results) + 2
    header = f"{'variant':<{name_width}}{'mean ms':>9}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'surgeries':>11}"
    if device.type == "cuda":
        header += f"{'peak MiB':>10}"
    print(f"\n{machine_info(device)['device_name']} ({device.type}, {torch.get_num_threads()} threads); "
          f"{n_parameters / 1e6:.2f} M parameters; batch {args.batch_size}, K={args.shots}, "
          f"{args.targets} targets + en as oracles; {args.steps} steps x {args.repeats} repeats")
    print(header)
    for name, r in results.items():
        line = (f"{name:<{name_width}}{r['mean_ms']:>9.1f}{r['median_ms']:>11.1f}{r['min_ms']:>9.1f}"
                f"{r['max_ms']:>9.1f}{r['surgeries_per_repeat'][-1]:>11}")
        if device.type == "cuda":
            line += f"{r['peak_memory_bytes'] / 2**20:>10.1f}"
        print(line)
    print()
    print(f"{'ratio':<22}{'mean':>7}" + "".join(f"{statistic:>13}" for statistic in ratios if statistic != "mean"))
    for name, value in headline.items():
        print(f"{name:<22}{value:7.3f}" + "".join(f"{ratios[statistic][name]:13.3f}" for statistic in ratios
                                                 if statistic != "mean"))
    print(f"gradient_a0.1 ran {results['gradient_a0.1']['surgeries_per_repeat'][-1]} surgeries in {args.steps} steps;"
          f" at the expected rate 0.1: naive x {expected_a01:.3f}")
    for name, met in targets.items():
        print(f"target {name}: {'met' if met else 'NOT met'}")
    print(f"surgery memory (from sizes): gradient +{gradient_bytes / 2**20:.1f} MiB persistent (one gradient-sized "
          f"buffer); reference +{5 * gradient_bytes / 2**20:.0f} MiB transient (5 G) in every call")
    if profile:
        b = profile["gradient_step_breakdown"]
        print("\nwhere a gradient-co-train step goes (alpha=1, ms/step, sections synchronised):")
        for name, ms in b["ms_per_step"].items():
            print(f"  {name:<48}{ms:8.2f}")
        print(f"  {'= surgery call':<48}{b['surgery_ms']:8.2f}   of which oracle forward+backward "
              f"{b['oracle_forward_backward_ms']:.2f}, buffer passes {b['surgery_buffer_passes_ms']:.2f}")
        print("buffer ops on one gradient-sized buffer (ms):")
        for name, ms in profile["buffer_ops_ms"].items():
            print(f"  {name:<64}{ms:7.2f}")
        s = profile["stages_english_oracle_batch"]
        print(f"English oracle batch as fslib.stages builds it: {s['select_to_list_collate_ms']:.2f} ms per call "
              f"(pre-collated: {s['precollated_copy_ms']:.3f} ms)")
    load_after = payload["machine"]["load_average_1_5_15_min"]
    if device.type == "cpu" and load_after and max(load_before[0], load_after[0]) > (os.cpu_count() or 1):
        print(f"\nWARNING: the machine was busy (1-min load {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the "
              f"end, {os.cpu_count()} cores)" + (
                  ": other processes preempt the intra-op threads and the wall-clock ratios come out too high; "
                  "compare the step_minima column, or run again with --threads 1" if torch.get_num_threads() > 1
                  else "; with one thread the ratios hold up, the absolute times do not"))
    print(f"\nwrote {out} ({time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
