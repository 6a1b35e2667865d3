#!/usr/bin/env python
"""What does stochastic gradient surgery cost per training step?

Times the training steps of co-training on the SAME batches, from the SAME initial weights, four ways:

- `naive`            naive-co-train: no surgery;
- `gradient`         gradient-co-train, alpha=1 (NER/POS): `fslib.engine.surgery.FlatGradients` +
                     `StochasticGradientSurgery`, exactly as `fslib.engine.training.train` plugs them in;
- `reference`        the same algorithm written the usual way, `fslib.engine.surgery_reference.ReferenceSurgery` (clone and
                     concatenate, deep copy of the model, Python `if`), plugged in at the same place;
- `gradient_a0.1`    gradient-co-train, alpha=0.1 (TyDiQA/XNLI): the coin mostly says no and the oracle
                     forward/backward is skipped;
- the other surgeons of `fslib/engine/surgeons`, alpha=1, each as its run's `surgeon` plugs it in:
  `per_layer` (the projection per parameter tensor), `gradvac` (per-tensor target cosines), `pcgrad_languages`
  and `upgrad` (per-language gradients of the step's own batch: one extra forward/backward per language present).

and prints/saves the ratios gradient/naive (target <= 1.3 on CPU), gradient/reference (target < 1) and
gradient(alpha=0.1)/naive. The model is a small, randomly initialised XLM-R with a 7-label token-classification
head; the data are synthetic NER-like features (lengths 20-60 drawn once with a fixed seed), collated by the kit's
own `Collator` and batched by the kit's own `batches` (length-grouped, dynamically padded); the oracle batches are
built as `fslib.engine.stages.Experiment.oracle_batches` builds them (a target's K shots as one batch; English: a random source
batch of min(K, micro-batch) examples). Everything is generated once, before any timing.

The step is the kit's own `fslib.engine.training.optimisation_step`, the body of `train()`'s loop (forward under the
same autocast, the isfinite check, backward, surgery, clipping, AdamW, the linear schedule, zeroing the flat
buffer), so what is timed is what training runs.

    .venv/bin/python bench/surgery_overhead.py [--device auto|cpu|cuda] [--shape small|base|large] [--bf16]
                                               [--steps 20] [--repeats 3]
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

from fslib.core.languages import SOURCE_LANG  # noqa: E402
from fslib.core.tasks import NER_LABELS  # noqa: E402
from fslib.engine.captured_oracle import capturable, oracle_pass  # noqa: E402
from fslib.engine.features import IGNORE, Collator  # noqa: E402
from fslib.engine.surgery import FlatGradients, get_surgeon  # noqa: E402
from fslib.engine.surgery_reference import ReferenceSurgery  # noqa: E402
from fslib.engine.training import (  # noqa: E402
    StageSettings,
    autocast,
    batches,
    optimisation_step,
    optimizer_for,
    to_device,
)

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("ar", "de", "es", "hi", "sw", "zh")  # six NER target languages (names only: the data are synthetic)
COMMON_CONFIG = dict(max_position_embeddings=514, type_vocab_size=1, hidden_dropout_prob=0.1,
                     attention_probs_dropout_prob=0.1)
SHAPES = {  # hidden size, layers, heads, feed-forward size and vocabulary of each model shape
    "small": dict(vocab_size=8000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=1024),  # small enough for a CPU
    "base": dict(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072),  # xlm-roberta-base, 278 M parameters
    "large": dict(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  intermediate_size=4096),  # xlm-roberta-large (the paper's model), 560 M parameters
}
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
    """NER-like features as `fslib.engine.features` lays them out: <s> ... </s>, a label on the first sub-word of each
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
    """The oracle batches as `fslib.engine.stages.Experiment.oracle_batches` makes them: a target's K shots (collated once), or
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
    surgery: str  # "none" | "efficient" (the kit's default: oracle pass from CUDA graphs where capturable) |
    #               "eager" (the efficient surgery with the eager oracle pass) | "reference"
    alpha: float = 1.0
    surgeon: str = "stochastic"  # fslib.core.surgeons.SURGEONS, for "efficient" and "eager"
    fused: bool | None = None  # the surgeon's sums (fslib.engine.surgery.gradient_products); None: the device's default


OTHER_SURGEONS = ("per_layer", "gradvac", "pcgrad_languages", "upgrad")
VARIANTS = (Variant("naive", "none"), Variant("gradient", "efficient", 1.0), Variant("reference", "reference", 1.0),
            Variant("gradient_a0.1", "efficient", 0.1),
            *(Variant(name, "efficient", 1.0, name) for name in OTHER_SURGEONS))
EAGER = Variant("gradient_eager", "eager", 1.0)  # where the oracle pass is captured, the same without capture


# the paper's surgery with the other way of summing than the device's default (fused on CUDA, reductions elsewhere)
FUSED, REDUCTIONS = Variant("gradient_fused", "efficient", 1.0, fused=True), \
    Variant("gradient_reductions", "efficient", 1.0, fused=False)


def variants_for(device: torch.device, precision: str) -> tuple[Variant, ...]:
    return VARIANTS + ((EAGER,) if capturable(device, precision) else ()) + \
        ((REDUCTIONS,) if device.type == "cuda" else (FUSED,))


class Trainer:
    """One variant's training state, built as `fslib.engine.training.train` builds it (optimizer_for, the linear
    schedule, FlatGradients, the surgery built from the flat gradients), ready to step."""

    def __init__(self, variant: Variant, template: torch.nn.Module, settings: StageSettings, total_steps: int,
                 oracles: Oracles, languages: list[str], device: torch.device, granularity: str = "step"):
        self.variant, self.settings, self.device = variant, settings, device
        self.model = model = copy.deepcopy(template).to(device).train()
        self.optimizer = optimizer_for(model, settings)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(settings.warmup_ratio * total_steps), total_steps)
        self.oracle = oracle = oracles.view()

        def oracle_loss(module: torch.nn.Module, lang: str) -> torch.Tensor:  # as fslib.engine.stages.Experiment.surgeon_factory
            inputs, _ = to_device(oracle(lang), device)
            with autocast(device, settings.precision):
                return module(**inputs).loss

        def batch_loss(batch: dict) -> torch.Tensor:  # as surgeon_factory: the per-language surgeons' passes
            inputs, _ = to_device(dict(batch), device)
            with autocast(device, settings.precision):
                return model(**inputs).loss

        self.grads = FlatGradients(list(model.parameters()))
        self.granularity = granularity
        surgeon_class = get_surgeon(variant.surgeon)
        if variant.surgery == "reference":  # writes its result back into the same .grad tensors
            self.surgeon = ReferenceSurgery(model, languages, variant.alpha, SURGERY_SEED, oracle_loss)
        elif variant.surgery == "efficient" and capturable(device, settings.precision):  # as surgeon_factory
            self.surgeon = surgeon_class(
                self.grads, languages, variant.alpha, SURGERY_SEED, batch_loss=batch_loss,
                oracle_pass=oracle_pass(model, self.grads, settings.precision, oracle))
        elif variant.surgery in ("efficient", "eager"):
            self.surgeon = surgeon_class(self.grads, languages, variant.alpha, SURGERY_SEED,
                                         lambda lang: oracle_loss(model, lang), batch_loss=batch_loss)
        else:
            self.surgeon = None
        if self.surgeon is not None and variant.fused is not None:
            self.surgeon.fused = variant.fused

    def step(self, group: list[dict]) -> float:
        """One optimisation step over a group of micro-batches, exactly as `train()` takes it, and the
        `loss.item()` that train() reads."""
        loss = optimisation_step(self.model, [dict(batch) for batch in group], grads=self.grads,
                                 optimizer=self.optimizer, scheduler=self.scheduler, settings=self.settings,
                                 device=self.device, surgeon=self.surgeon, surgery_granularity=self.granularity)
        return loss.item()

    @property
    def captured(self):
        """The captured oracle pass's statistics (graphs, replays, eager passes), if this trainer has one."""
        pass_ = getattr(self.surgeon, "oracle_pass", None)
        return pass_.captured.stats() if hasattr(pass_, "captured") else None

    @property
    def surgeries(self) -> int:
        return self.surgeon.surgeries if self.surgeon else 0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- timing -----------------------------------------------------------------------------------------------------
@dataclass
class Setup:
    """Everything the timed runs share, built once before any timing."""
    template: torch.nn.Module
    settings: StageSettings
    steps: list[list[dict]]  # each optimisation step's micro-batches
    oracles: Oracles
    languages: list[str]
    device: torch.device
    warmup: int
    granularity: str
    variants: tuple[Variant, ...]

    def trainer(self, variant: Variant) -> Trainer:
        torch.manual_seed(0)
        return Trainer(variant, self.template, self.settings, len(self.steps), self.oracles, self.languages,
                       self.device, self.granularity)


def time_interleaved(setup: Setup, repeat: int) -> dict[str, dict]:
    """One repetition: a trainer per variant, all from the same initial weights, stepped in turn on each batch
    (the order rotates from one batch to the next), so that a burst of load from another process on a shared
    machine falls on every variant alike. Wall-clock and process CPU seconds per step."""
    gc.collect()
    variants = setup.variants
    trainers = {variant.name: setup.trainer(variant) for variant in variants}
    runs = {name: {"times_s": [], "cpu_times_s": []} for name in trainers}
    surgeries_before = dict.fromkeys(trainers, 0)
    for index, group in enumerate(setup.steps):
        if index == setup.warmup:
            surgeries_before = {name: trainer.surgeries for name, trainer in trainers.items()}
        shift = (index + repeat) % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            trainer = trainers[variant.name]
            sync(setup.device)
            start, cpu_start = time.perf_counter(), time.process_time()
            loss = trainer.step(group)
            sync(setup.device)
            if index >= setup.warmup:
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
            run["language_passes"] = int(stats.get("language_passes", 0))
            run["oracle_counts"] = {key[len("oracle_"):]: int(value) for key, value in stats.items()
                                    if key.startswith("oracle_")}
        if trainer.captured:
            run["captured_oracle_pass"] = trainer.captured
    return runs


def oracle_pass_ms(setup: Setup) -> dict[str, float]:
    """Where gradient-co-train's extra time goes: the mean time of the oracle forward/backward alone (the
    oracle languages in turn, each batch as the surgery gets it), eager and, where capturable, replayed from
    CUDA graphs (after one untimed round that captures them). The rest of gradient - naive is the surgery's
    passes over the gradient buffer."""
    trainer = setup.trainer(VARIANTS[0])
    passes = {"eager": lambda lang: eager_pass(trainer, lang)}
    if capturable(setup.device, setup.settings.precision):
        passes["captured"] = oracle_pass(trainer.model, trainer.grads, setup.settings.precision, trainer.oracle)
    rounds = max(len(setup.steps), 2 * len(setup.languages))
    times = {}
    for name, pass_ in passes.items():
        measured = []
        for index in range(rounds + len(setup.languages)):
            lang = setup.languages[index % len(setup.languages)]
            sync(setup.device)
            start = time.perf_counter()
            pass_(lang)
            sync(setup.device)
            if index >= len(setup.languages):  # the first round warms up (and captures)
                measured.append(time.perf_counter() - start)
        times[name] = statistics.fmean(measured) * 1e3
    del trainer
    return times


def eager_pass(trainer: Trainer, lang: str) -> None:
    trainer.grads.zero_()
    inputs, _ = to_device(trainer.oracle(lang), trainer.device)
    with autocast(trainer.device, trainer.settings.precision):
        loss = trainer.model(**inputs).loss
    loss.backward()


def peak_memory(setup: Setup, variant: Variant, steps: int) -> int:
    """CUDA only: torch.cuda.max_memory_allocated over a few steps of one variant on its own (the timed
    repetitions hold every variant at once, so their peak says nothing per variant)."""
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(setup.device)
    trainer = setup.trainer(variant)
    for group in setup.steps[:steps]:
        trainer.step(group)
    sync(setup.device)
    peak = torch.cuda.max_memory_allocated(setup.device)
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
    for key in ("conflict_rate", "oracle_counts", "projections", "final_loss", "language_passes"):
        if key in runs[-1]:
            summary[key] = runs[-1][key]
    return summary


def paired_ratio(runs: dict[str, list[dict]], a: str, b: str) -> float:
    """Median over (repetition, step) of t_a / t_b, the two measured back to back on the same batch."""
    return statistics.median(ta / tb for run_a, run_b in zip(runs[a], runs[b])
                             for ta, tb in zip(run_a["times_s"], run_b["times_s"]))


# ---- where the time goes ----------------------------------------------------------------------------------------
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
    parser.add_argument("--batch-size", type=int, default=32, help="effective batch (micro-batch x grad-accum)")
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step (the authors': 16)")
    parser.add_argument("--granularity", choices=("step", "micro_batch"), default="step",
                        help="surgery after each step (the paper) or each micro-batch (the authors' code)")
    parser.add_argument("--shots", type=int, default=5, help="K, shots per target language")
    parser.add_argument("--targets", type=int, default=6, choices=range(1, len(TARGETS) + 1), metavar="N")
    parser.add_argument("--min-len", type=int, default=20)
    parser.add_argument("--max-len", type=int, default=60)
    parser.add_argument("--shape", choices=tuple(SHAPES), default="small",
                        help="model shape: small (CPU), base or large (xlm-roberta-base/-large; for a GPU)")
    parser.add_argument("--vocab", type=int, default=None, help="vocabulary size (default: the shape's)")
    parser.add_argument("--variants", default=None,
                        help="comma-separated variants to time (default: all; on an 80 GB GPU with the large shape, "
                             "leave out reference, whose 5 G transient buffers do not fit beside four trainers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default bench/results/surgery_overhead-<device>.json)")
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    model_config = {**SHAPES[args.shape], **COMMON_CONFIG}
    model_config["vocab_size"] = args.vocab = args.vocab or model_config["vocab_size"]
    suffix = "" if args.shape == "small" else f"-{args.shape}"
    out = args.out or ROOT / "bench" / "results" / f"surgery_overhead-{device.type}{suffix}.json"
    if args.bf16 and device.type != "cuda":
        print("note: --bf16 is ignored on CPU (training autocasts on CUDA only)", file=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    began = time.perf_counter()
    load_before = machine_info(device)["load_average_1_5_15_min"]

    tokenizer = synthetic_tokenizer(args.vocab)
    collator = Collator("ner", tokenizer)
    config = XLMRobertaConfig(**model_config, pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              num_labels=len(NER_LABELS), id2label=dict(enumerate(NER_LABELS)),
                              label2id={label: i for i, label in enumerate(NER_LABELS)})
    torch.manual_seed(args.seed)
    template = XLMRobertaForTokenClassification(config)
    n_parameters = sum(p.numel() for p in template.parameters() if p.requires_grad)
    settings = StageSettings(epochs=1, batch_size=args.batch_size, learning_rate=2e-5, grad_accum=args.grad_accum,
                             precision="bf16" if args.bf16 else "fp32")  # NER
    micro_batch = args.batch_size // args.grad_accum
    languages = list(TARGETS[:args.targets]) + [SOURCE_LANG]  # oracle_include_source=True (the default)

    n_batches = args.warmup + args.steps
    data, english = co_training_features(n_batches, args, torch.Generator().manual_seed(args.seed), tokenizer)
    micro_batches = list(batches(data, micro_batch, collator, torch.Generator().manual_seed(args.seed)))
    assert len(micro_batches) == n_batches * args.grad_accum and all(len(b["langs"]) == micro_batch
                                                                     for b in micro_batches)
    steps = [micro_batches[i:i + args.grad_accum] for i in range(0, len(micro_batches), args.grad_accum)]
    oracles = Oracles(data, english, collator, args.shots, micro_batch, n_batches * args.grad_accum, args.seed + 1)
    variants = variants_for(device, settings.precision)
    if args.variants:
        chosen = args.variants.split(",")
        unknown = set(chosen) - {variant.name for variant in variants}
        if unknown or not {"naive", "gradient"} <= set(chosen):
            parser.error(f"--variants: include naive and gradient, from {', '.join(v.name for v in variants)}")
        variants = tuple(variant for variant in variants if variant.name in chosen)
    setup = Setup(template, settings, steps, oracles, languages, device, args.warmup, args.granularity, variants)

    runs: dict[str, list[dict]] = {variant.name: [] for variant in setup.variants}
    for repeat in range(args.repeats):
        for name, run in time_interleaved(setup, repeat).items():
            runs[name].append(run)
        print(f"repeat {repeat + 1}/{args.repeats} done ({time.perf_counter() - began:.0f} s)", flush=True)
    results = {name: summarise(variant_runs) for name, variant_runs in runs.items()}
    oracle_ms = oracle_pass_ms(setup)
    passes_per_step = args.grad_accum if args.granularity == "micro_batch" else 1
    extra_ms = results["gradient"]["mean_ms"] - results["naive"]["mean_ms"]
    kit_pass = oracle_ms.get("captured", oracle_ms["eager"])
    breakdown = {"gradient_minus_naive_ms": extra_ms, "oracle_pass_ms": oracle_ms,
                 "oracle_passes_per_step": passes_per_step,
                 "buffer_passes_and_rest_ms": extra_ms - passes_per_step * kit_pass,
                 "note": "one oracle forward/backward timed on its own (eager; and replayed from CUDA graphs where "
                         "capturable), the oracle languages in turn; the rest is the surgery's passes over the "
                         "gradient buffers (zeroing the oracle's, the sums g.o, |g|, |o|^2, the projection)"}
    if device.type == "cuda":
        for variant in setup.variants:
            results[variant.name]["peak_memory_bytes"] = peak_memory(setup, variant, args.warmup + 3)

    pairs = [(a, b) for a, b in (("gradient", "naive"), ("gradient", "reference"), ("gradient_a0.1", "naive"),
                                 ("reference", "naive"), ("gradient_eager", "naive"), ("gradient", "gradient_eager"),
                                 ("gradient_fused", "naive"), ("gradient_reductions", "naive"),
                                 ("gradient_fused", "gradient"), ("gradient", "gradient_reductions"),
                                 *((name, "naive") for name in OTHER_SURGEONS))
             if a in results and b in results]
    ratios = {statistic: {f"{a}/{b}": results[a][key] / results[b][key] for a, b in pairs}
              for statistic, key in (("mean", "mean_ms"), ("median", "median_ms"),
                                     ("step_minima", "mean_of_step_minima_ms"), ("cpu_time", "cpu_time_mean_ms"))}
    ratios["paired"] = {f"{a}/{b}": paired_ratio(runs, a, b) for a, b in pairs}
    headline = ratios["mean"]
    # with few steps the number of alpha=0.1 surgeries in the window is small and discrete: also give what
    # alpha=0.1 costs on average, naive + 0.1 * (gradient - naive)
    expected_a01 = 1.0 + 0.1 * (headline["gradient/naive"] - 1.0)
    limit = 1.3
    targets = {f"gradient/naive <= {limit}": headline["gradient/naive"] <= limit}
    if "gradient/reference" in headline:
        targets["gradient/reference < 1"] = headline["gradient/reference"] < 1.0

    gradient_bytes = n_parameters * 4  # fp32 gradients (bf16 autocast keeps fp32 parameters and gradients)
    memory = {"gradient_bytes": gradient_bytes,
              "note": "computed from sizes; G = one fp32 gradient-sized buffer, on top of the model's own gradients",
              "gradient_extra_bytes": gradient_bytes,  # FlatGradients.oracle; the model's row IS .grad
              "gradient_extra_buffers": "1 G, persistent (grads.oracle, the flat buffers' second row); scalars "
                                        "otherwise",
              "reference_extra_bytes_peak": 5 * gradient_bytes,
              "reference_extra_buffers": "transient, during each call: g_train (1 G after the clones are "
                                         "concatenated), the deep copy's parameters (1 G) and gradients (1 G), "
                                         "g_oracle (1 G, plus 1 G of clones while concatenating) = 5 G; 6 G when it "
                                         "projects (the new g_train and a temporary)",
              "other_surgeons_extra_buffers": "per_layer, gradvac: 1 G persistent, as gradient (gradvac adds its "
                                              "targets: languages x tensors scalars); pcgrad_languages, upgrad: one "
                                              "G per language present in the step, transient (the gradient "
                                              "matrix), plus 1 G for PCGrad's projected row; no second row"}
    if device.type == "cuda":
        naive_peak = results["naive"]["peak_memory_bytes"]
        memory["cuda_peak_bytes"] = {name: r["peak_memory_bytes"] for name, r in results.items()}
        memory["cuda_peak_minus_naive_bytes"] = {name: r["peak_memory_bytes"] - naive_peak
                                                 for name, r in results.items()}

    lengths = [int(b["input_ids"].shape[1]) for group in steps[args.warmup:] for b in group]
    payload = {
        "benchmark": "surgery_overhead",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine_info(device), "load_average_at_start": load_before},
        "config": {
            "model": {"class": "XLMRobertaForTokenClassification", "shape": args.shape,
                      "init": "random (torch.manual_seed(seed))",
                      **config.to_diff_dict(), "attn_implementation": template.config._attn_implementation,
                      "trainable_parameters": n_parameters},
            "task": "NER-like token classification", "labels": list(NER_LABELS),
            "batch_size": args.batch_size, "grad_accum": args.grad_accum, "surgery_granularity": args.granularity,
            "shots_per_target": args.shots, "targets": list(TARGETS[:args.targets]),
            "oracle_languages": languages, "oracle_batch_sizes": {
                **{lang: int(oracles.fixed[lang]["input_ids"].shape[0]) for lang in oracles.fixed},
                SOURCE_LANG: min(args.shots, micro_batch)},
            "oracle_pass": "replayed from CUDA graphs (fslib.engine.captured_oracle)" if EAGER in setup.variants else "eager",
            "sequence_lengths": [args.min_len, args.max_len], "padded_lengths_timed_batches": lengths,
            "optimizer": "AdamW (fslib.engine.training.optimizer_for), lr 2e-5, linear schedule, clip 1.0",
            "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats, "seed": args.seed,
            "surgery_seed": SURGERY_SEED, "bf16_autocast": bool(args.bf16 and device.type == "cuda"),
            "schedule": "per repetition, one trainer per variant, stepped in turn on each batch (order rotating)",
            "statistic": "per step, median over repeats; then mean/median over steps",
        },
        "variants": results,
        "ratios": headline,
        "ratios_all_statistics": {
            "note": "mean: of the per-step medians over repeats (the headline; total time); median: of the same; "
                    "step_minima: mean of the per-step fastest repeat; cpu_time: process CPU time; paired: median "
                    "over (repeat, step) of the ratio of two steps run back to back on the same batch",
            **ratios},
        "expected_gradient_a0.1/naive": expected_a01,
        "targets_met": targets,
        "gradient_overhead_breakdown": breakdown,
        "memory": memory,
        "wall_s": time.perf_counter() - began,
    }
    write_json(out, payload)

    # ---- the table
    name_width = max(len(name) for name in results) + 2
    header = (f"{'variant':<{name_width}}{'mean ms':>9}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'surgeries':>11}"
              f"{'lang passes':>13}")
    if device.type == "cuda":
        header += f"{'peak MiB':>10}"
    print(f"\n{machine_info(device)['device_name']} ({device.type}, {torch.get_num_threads()} threads); "
          f"{n_parameters / 1e6:.2f} M parameters; batch {args.batch_size}, K={args.shots}, "
          f"{args.targets} targets + en as oracles; {args.steps} steps x {args.repeats} repeats")
    print(header)
    for name, r in results.items():
        line = (f"{name:<{name_width}}{r['mean_ms']:>9.1f}{r['median_ms']:>11.1f}{r['min_ms']:>9.1f}"
                f"{r['max_ms']:>9.1f}{r['surgeries_per_repeat'][-1]:>11}{r.get('language_passes', 0):>13}")
        if device.type == "cuda":
            line += f"{r['peak_memory_bytes'] / 2**20:>10.1f}"
        print(line)
    print()
    print(f"{'ratio':<22}{'mean':>7}" + "".join(f"{statistic:>13}" for statistic in ratios if statistic != "mean"))
    for name, value in headline.items():
        print(f"{name:<22}{value:7.3f}" + "".join(f"{ratios[statistic][name]:13.3f}" for statistic in ratios
                                                 if statistic != "mean"))
    if "gradient_a0.1" in results:
        print(f"gradient_a0.1 ran {results['gradient_a0.1']['surgeries_per_repeat'][-1]} surgeries in {args.steps} "
              f"steps; at the expected rate 0.1: naive x {expected_a01:.3f}")
    print(f"gradient - naive = {extra_ms:.1f} ms per step: {passes_per_step} oracle pass(es) of "
          + ", ".join(f"{ms:.1f} ms {name}" for name, ms in oracle_ms.items())
          + f"; buffer passes and the rest {breakdown['buffer_passes_and_rest_ms']:.1f} ms")
    for name, run in runs.items():
        if "captured_oracle_pass" in run[-1]:
            print(f"{name}: captured oracle pass {run[-1]['captured_oracle_pass']}")
    for name, met in targets.items():
        print(f"target {name}: {'met' if met else 'NOT met'}")
    print(f"surgery memory (from sizes): gradient +{gradient_bytes / 2**20:.1f} MiB persistent (one gradient-sized "
          f"buffer); reference +{5 * gradient_bytes / 2**20:.0f} MiB transient (5 G) in every call")
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
