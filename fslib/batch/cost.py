"""What a grid costs before it runs: optimiser steps, oracle passes and evaluations per stage, counted from the run
configurations and the data sizes, and GPU-hours on one H100 from per-pass times of each model shape.

`fslib batch FILE --dry-run` prints `describe_cost(...)`. The rules are the engine's and the run store's own (which
runs share a source model, which methods start from one, TyDiQA's held-out fraction, each surgeon's expected oracle
passes); torch loads only for a grid with gradient-co-train runs, whose surgeon class says its passes.

The counts are exact given the example counts: the number of optimiser steps follows the training loop's own
arithmetic (micro-batches per epoch, grouped by grad_accum), the oracle passes the surgery's (one coin per
application: per optimiser step, or per micro-batch under `surgery_granularity: micro_batch`), the evaluations the
selection settings (every epoch, or every `select_every_steps` steps and at the end). Example counts come from
the data files when they are there (sentences, rows or questions counted without tokenising); otherwise from
each task's `cost_sizes` (fslib.core.tasks), the published sizes of the XTREME sets (approximate where a task has
many test sets).
One feature per example is assumed (TyDiQA's long contexts make a few more windows).

The times are a model, not a measurement of the grid: see SHAPES for which numbers were measured on an H100
(bench/results/surgery_overhead-cuda-large.json) and which are extrapolated from them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from fslib.core.languages import SOURCE_LANG
from fslib.core.methods import method_entry
from fslib.core.steps import steps_per_epoch
from fslib.core.surgeons import oracle_batch_size
from fslib.core.tasks import get_task
from fslib.store.config import CAPTURED_PRECISIONS, RunConfig, stage_hyperparameters
from fslib.store.source_models import source_model_identity

# ---- data sizes ---------------------------------------------------------------------------------------------
# Examples per split when the data files are absent: each task's `cost_sizes`. English: the published XTREME sizes
# (PAN-X, UD English treebanks as XTREME merges them, TyDiQA-GoldP, MultiNLI/XNLI). Targets: one typical size per
# task, since the XTREME-R test sets differ by language (PAN-X 100-10,000 sentences, UD 100-10,000; TyDiQA-GoldP:
# the mean of its eight targets' files): an approximation. The typical padded length of a length-grouped batch
# (sub-word tokens, to scale the per-token time) is each task's `typical_tokens`, assumed.


def _count_examples(path: Path, task: str) -> int:
    """Examples in an XTREME-layout file, without parsing it into a dataset."""
    file_format = get_task(task).file_format
    if file_format == "tagging":  # sentences: blocks of token lines separated by blank lines
        count, inside = 0, False
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    count += not inside
                    inside = True
                else:
                    inside = False
        return count
    if file_format == "nli":
        with open(path, encoding="utf-8") as lines:
            return sum(1 for line in lines if line.strip())
    import json  # squad: SQuAD JSON, one question per qas entry

    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return sum(len(paragraph["qas"]) for article in data for paragraph in article["paragraphs"])


class DataSizes:
    """Examples per (task, language, split) as a run sees them: counted from the files under data_dir where
    present, else the task's `cost_sizes`; TyDiQA's English dev set is a tenth of its train file; caps applied."""

    def __init__(self) -> None:
        self._counted: dict[tuple, int] = {}
        self.estimated: set[str] = set()  # tasks for which some size came from `cost_sizes`

    def file_examples(self, config: RunConfig, lang: str, file_split: str) -> int:
        key = (config.task, config.data_dir, lang, file_split)
        if key not in self._counted:
            count = None
            if config.source == "xtreme" and config.data_dir:
                pattern = get_task(config.task).xtreme_file
                path = Path(config.data_dir) / pattern.format(split=file_split, lang=lang) if pattern else None
                if path is not None and path.is_file():
                    count = _count_examples(path, config.task)
            if config.source in ("ud", "uner") and config.data_dir:  # the treebank's split, carved as runs carve it
                from fslib.formats.ud import read_ud_split
                from fslib.formats.uner import read_uner_split

                read = read_uner_split if config.source == "uner" else read_ud_split
                count = len(read(config.data_dir, lang, file_split, config.treebank(lang)))
            if count is None:
                self.estimated.add(config.task)
                table = get_task(config.task).cost_sizes
                who = "en" if lang == SOURCE_LANG else "target"
                count = table.get(f"{who}-{file_split}", table.get(f"target-{file_split}", 0))
            self._counted[key] = count
        return self._counted[key]

    def examples(self, config: RunConfig, lang: str, split: str) -> int:
        c, source, task = config, lang == SOURCE_LANG, get_task(config.task)
        if task.source_dev_fraction is not None and split != "test":  # dev: held out of train (the source's)
            train = self.file_examples(c, lang, "train")  # or train without the shots (a target's)
            held_out = max(1, round(train * task.source_dev_fraction)) if c.hold_out_source_dev else 0
            n = (train - held_out if split == "train" else held_out) if source else train - c.k
        else:
            n = self.file_examples(c, lang, task.file_split(split))
        cap = c.max_train_examples if split == "train" else c.max_eval_examples
        return min(n, cap) if cap is not None else n


def shots(config: RunConfig) -> int:
    """Training examples per target language: K (XNLI: K per class)."""
    return get_task(config.task).shots(config.k)


# ---- per-pass times ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """Time of one forward+backward pass on an H100 under bf16 autocast: `pass_ms` + `token_ms` x padded tokens;
    an optimiser step adds `optimizer_ms`; an evaluation batch (forward only) costs `eval_fraction` of a pass."""

    name: str
    pass_ms: float
    token_ms: float
    optimizer_ms: float
    source: str  # which numbers are measured, which extrapolated
    eval_fraction: float = 1 / 3  # forward only: about a third of forward+backward (assumed)
    fp32_token_factor: float = 8.0  # precision: fp32 runs fp32 matmuls, no tensor-core bf16 (assumed)

    captured_pass_ms: float = 11.0  # an oracle pass replayed from CUDA graphs: launches gone, memory traffic left
    unit: str = "GPU-hours on one H100"  # what the seconds are: a GPU's, or one CPU core's (cpu_cores > 0)
    cpu_cores: int = 0  # CPU shapes: the cores of the machine measured, for the wall-time line

    def pass_seconds(self, tokens: float, precision: str, captured: bool = False) -> float:
        fixed = self.captured_pass_ms if captured else self.pass_ms
        return (fixed + self.token_ms * tokens * (self.fp32_token_factor if precision == "fp32" else 1)) / 1000


# XLM-R large: surgery_overhead-cuda-large.json, H100, batch 32, padded length 27-60: a naive step 72.0 ms; the
# oracle forward/backward alone (5 examples, ~235 tokens) 57.0 ms. With AdamW + clip taken as 5 ms (assumed),
# the two passes give 55 ms per pass and 0.0085 ms per token. The oracle pass replayed from CUDA graphs
# (fslib.engine.captured_oracle) took 13.9 ms in the same benchmark (surgery_overhead-cuda-large.json, 2026-11-27; 5
# examples padded to 32-token buckets, ~300 tokens): 11 ms fixed. XLM-R base has no H100 measurement: half the
# layers of large at a smaller width, so half the per-pass times and 0.3x the per-token time (extrapolated).
SHAPES: dict[str, Shape] = {
    "large": Shape("xlm-roberta-large", pass_ms=55.0, token_ms=0.0085, optimizer_ms=5.0,
                   source="measured on an H100 (naive step 72.0 ms, oracle pass 57.0 ms at batch 32 / 5), split "
                          "into per-pass and per-token time with AdamW taken as 5 ms"),
    "base": Shape("xlm-roberta-base", pass_ms=27.5, token_ms=0.0026, optimizer_ms=2.0, captured_pass_ms=5.5,
                  source="extrapolated from the large shape's H100 numbers (12 of 24 layers, hidden 768 of 1024)"),
    # multilingual-e5-small on one core of the 2-core VM (results/real-pos/pilot.md): CPU time of forward+backward
    # 0.178 s at 1 x 40 tokens and 0.657 s at 8 x 40 (110 ms + 1.71 ms per token), AdamW over the trimmed model
    # 0.277 s, a forward-only evaluation batch 0.36 of a pass; all x 0.8, the ratio of naive-co-train's measured CPU
    # time (110 s at K=5) to this model's, as the micro-benchmark ran under load 8.8. An oracle pass with the
    # surgery's work on the flat gradients (42M floats) took 0.61 s (gradient-co-train 185 s, 75 s over naive for
    # 123 oracle passes at alpha 1): 336 ms fixed, held in captured_pass_ms, which a CPU shape's oracle passes always
    # use (a CPU has no CUDA graphs: that field is the oracle pass's own fixed time, surgery included).
    "e5-small": Shape("multilingual-e5-small", pass_ms=88.0, token_ms=1.37, optimizer_ms=222.0, eval_fraction=0.36,
                      fp32_token_factor=1.0, captured_pass_ms=336.0, unit="CPU core-hours (fp32, one thread a job)",
                      cpu_cores=2, source="measured on the 2-core VM (results/real-pos/pilot.md)"),
}


def shape_of(model: str) -> Shape | None:
    """The timing shape of a model name or folder (large/base XLM-R); None for others (no estimate)."""
    name = Path(model).name.lower()
    return next((shape for key, shape in SHAPES.items() if key in name), None)


# ---- counting a run ---------------------------------------------------------------------------------------
STAGES = ("source-training", "target-adapting", "co-training", "oracle passes", "per-language passes",
          "gradient similarity",
          "evaluation during training", "test evaluation")


@dataclass
class Cost:
    """Counts per stage (steps, passes, examples evaluated) and seconds per stage."""

    steps: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # optimiser steps
    passes: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # forward+backward passes
    evaluated: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # examples predicted
    evaluations: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # evaluation points
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    timed: bool = True  # False when some run's model has no timing shape
    shape: Shape | None = None  # the timing shape of the runs (the first one's where they differ)

    def add(self, other: Cost) -> None:
        for name in ("steps", "passes", "evaluated", "evaluations", "seconds"):
            for stage, value in getattr(other, name).items():
                getattr(self, name)[stage] += value
        self.timed &= other.timed
        self.shape = self.shape or other.shape


def _training(cost: Cost, stage: str, config: RunConfig, examples: int, *, batch: int, grad_accum: int,
              epochs: int, shape: Shape | None, tokens: float) -> tuple[int, int]:
    """Add a training stage; returns (optimiser steps, micro-batches)."""
    micro = batch // grad_accum
    micro_batches = math.ceil(examples / micro)
    carry = stage_hyperparameters(config, adapting=stage == "target-adapting").get("carry_leftovers", False)
    steps = steps_per_epoch(micro_batches, grad_accum, carry_leftovers=carry) * epochs
    cost.steps[stage] += steps
    cost.passes[stage] += micro_batches * epochs
    if shape:
        pass_seconds = shape.pass_seconds(min(examples, micro) * tokens, config.precision)
        cost.seconds[stage] += micro_batches * epochs * pass_seconds + steps * shape.optimizer_ms / 1000
    return steps, micro_batches * epochs


def _evaluate(cost: Cost, stage: str, config: RunConfig, examples: int, shape: Shape | None, tokens: float) -> None:
    cost.evaluated[stage] += examples
    if shape and examples:
        batches = math.ceil(examples / config.eval_batch_size)
        batch = min(examples, config.eval_batch_size)
        cost.seconds[stage] += batches * shape.pass_seconds(batch * tokens, config.precision) * shape.eval_fraction


def evaluation_points(config: RunConfig, steps: int, epochs: int) -> int:
    """How often a training stage evaluates: every epoch, or every `select_every_steps` steps and at the end."""
    if config.select_every_steps:
        return steps // config.select_every_steps + (steps % config.select_every_steps != 0)
    return epochs


def source_training_cost(config: RunConfig, sizes: DataSizes) -> Cost:
    """One source model: training on English and its dev evaluations."""
    c, cost, shape = config.resolved(), Cost(), shape_of(config.model)
    cost.timed, cost.shape = shape is not None, shape
    tokens = get_task(c.task).typical_tokens
    steps, _ = _training(cost, "source-training", c, sizes.examples(c, SOURCE_LANG, "train"),
                         batch=c.train_batch_size, grad_accum=c.grad_accum, epochs=c.epochs, shape=shape, tokens=tokens)
    if get_task(c.task).has_source_dev(c.hold_out_source_dev):
        points = evaluation_points(c, steps, c.epochs)
        cost.evaluations["evaluation during training"] += points
        _evaluate(cost, "evaluation during training", c, points * sizes.examples(c, SOURCE_LANG, "dev"), shape, tokens)
    return cost


def oracle_examples(config: RunConfig, lang: str) -> int:
    """Examples in one oracle batch of `lang`: the engine's rule (fslib.core.surgeons.oracle_batch_size)."""
    size = oracle_batch_size(config, lang, shots(config))
    return shots(config) if size is None else size


def run_cost(config: RunConfig, sizes: DataSizes) -> Cost:
    """One run without its source model (see source_training_cost): training, oracle passes, evaluations."""
    c, cost, shape = config.resolved(), Cost(), shape_of(config.model)
    cost.timed, cost.shape = shape is not None, shape
    tokens = get_task(c.task).typical_tokens
    targets = c.targets
    test = lambda langs: _evaluate(cost, "test evaluation", c, sum(sizes.examples(c, lang, "test") for lang in langs),
                                   shape, tokens)
    if c.method == "zero-shot":
        test(c.languages)
    elif c.method in ("ord-FS", "ord-FS+dev", "co-FT"):
        groups = [[lang] for lang in targets] if c.method != "co-FT" else [targets]
        for group in groups:
            steps, _ = _training(cost, "target-adapting", c, shots(c) * len(group), batch=c.target_batch_size,
                                 grad_accum=1, epochs=c.target_epochs, shape=shape, tokens=tokens)
            if c.method == "ord-FS+dev":
                cost.evaluations["evaluation during training"] += c.target_epochs
                _evaluate(cost, "evaluation during training", c, c.target_epochs * sizes.examples(c, group[0], "dev"),
                          shape, tokens)
        test([SOURCE_LANG, *targets])
    elif c.method in ("naive-co-train", "gradient-co-train"):
        examples = sizes.examples(c, SOURCE_LANG, "train") + shots(c) * len(targets)
        steps, micro_batches = _training(cost, "co-training", c, examples, batch=c.train_batch_size,
                                         grad_accum=c.grad_accum, epochs=c.epochs, shape=shape, tokens=tokens)
        if c.method == "gradient-co-train":
            applications = micro_batches if c.surgery_granularity == "micro_batch" else steps
            oracles = list(targets) + ([SOURCE_LANG] if c.oracle_include_source else [])
            from fslib.engine.surgery import get_surgeon  # torch: only for a grid with surgery

            # the surgeon's own expected passes per application (the stochastic one: one with probability alpha)
            surgeon = get_surgeon(c.surgeon)
            passes = surgeon.oracle_passes(c.alpha, len(oracles)) * applications
            _language_passes(cost, c, surgeon, sizes.examples(c, SOURCE_LANG, "train"), applications, shape, tokens)
            cost.passes["oracle passes"] += passes
            if shape:
                captured = bool(shape.cpu_cores) or (c.cuda_graphs and c.precision in CAPTURED_PRECISIONS)
                mean_seconds = sum(shape.pass_seconds(oracle_examples(c, lang) * tokens, c.precision, captured)
                                   for lang in oracles)
                cost.seconds["oracle passes"] += passes * mean_seconds / len(oracles)
        if get_task(c.task).has_source_dev(c.hold_out_source_dev):
            points = evaluation_points(c, steps, c.epochs)
            curve = [lang for lang in targets if c.curve_langs is None or lang in c.curve_langs]
            dev_langs = [SOURCE_LANG] + (curve if c.target_dev_curves else [])
            cost.evaluations["evaluation during training"] += points
            per_point = sum(sizes.examples(c, lang, "dev") for lang in dev_langs)
            if c.test_curves:
                per_point += sum(sizes.examples(c, lang, "test") for lang in dev_langs)
            _evaluate(cost, "evaluation during training", c, points * per_point, shape, tokens)
        if c.gradient_similarity:
            micro = c.train_batch_size // c.grad_accum
            cost.passes["gradient similarity"] += c.similarity_source_batches + len(targets)
            if shape:
                cost.seconds["gradient similarity"] += (
                    c.similarity_source_batches * shape.pass_seconds(micro * tokens, c.precision)
                    + len(targets) * shape.pass_seconds(shots(c) * tokens, c.precision))
        test(c.languages)
    else:  # a method without a rule here would be priced as nothing: say so
        raise ValueError(f"fslib.batch.cost has no rule for method {c.method!r}: add one to run_cost")
    return cost


def _language_passes(cost: Cost, config: RunConfig, surgeon, source_examples: int, applications: int,
                     shape: Shape | None, tokens: float) -> None:
    """A surgeon of the step's own batch (per-language gradients): its expected extra passes, from each
    language's chance of being in a micro-batch (drawn without replacement: 1 - C(N - n, m) / C(N, m) for n of N
    examples, micro-batch m), `grad_accum` micro-batches a step. Each pass takes a language's share of a
    micro-batch; priced as a pass over 1/L of one, L the languages expected in it."""
    micro = config.train_batch_size // config.grad_accum
    counts = [source_examples] + [shots(config)] * len(config.targets)
    total = sum(counts)
    presence = [1 - math.comb(total - n, micro) / math.comb(total, micro) if micro <= total - n else 1.0
                for n in counts]
    passes = surgeon.batch_passes(config.alpha, presence) * config.grad_accum * applications
    if not passes:
        return
    cost.passes["per-language passes"] += passes
    if shape:
        share = micro / max(sum(presence), 1.0)
        cost.seconds["per-language passes"] += passes * shape.pass_seconds(share * tokens, config.precision)


def source_key(config: RunConfig) -> tuple:
    """Runs with the same key share one source model: the run store's own rule
    (fslib.store.source_models.source_model_identity), with the data folder and UD treebank its file stamps stand
    for."""
    c = config.resolved()
    return (*source_model_identity(c), c.data_dir, c.treebank(SOURCE_LANG) if c.source == "ud" else None)


@dataclass
class GridCost:
    total: Cost
    runs: int
    source_models: int
    co_training_runs: int
    per_co_training_run: dict[str, float]  # steps, oracle passes per step, dev evaluations (per run, averaged)
    estimated_sizes: set[str]


def grid_cost(configs: list[RunConfig], sizes: DataSizes | None = None) -> GridCost:
    """The cost of `configs` (each run once) and of the source models they need (each once)."""
    sizes = sizes or DataSizes()
    total, sources, co, gradient = Cost(), set(), Cost(), Cost()
    co_runs = 0
    for config in configs:
        cost = run_cost(config, sizes)
        total.add(cost)
        if config.method in ("naive-co-train", "gradient-co-train"):
            co.add(cost)
            co_runs += 1
        if config.method == "gradient-co-train":
            gradient.add(cost)
        if method_entry(config.method).uses_source_model and source_key(config) not in sources:
            sources.add(source_key(config))
            total.add(source_training_cost(config, sizes))
    per_run = {}
    if co_runs:
        surgery_steps = gradient.steps["co-training"]
        per_run = {"optimiser steps": co.steps["co-training"] / co_runs,
                   "oracle passes per optimiser step": (gradient.passes["oracle passes"] / surgery_steps
                                                        if surgery_steps else 0.0),
                   "dev evaluations": co.evaluations["evaluation during training"] / co_runs}
    return GridCost(total, len(configs), len(sources), co_runs, per_run, set(sizes.estimated))


def gpu_hours(cost: Cost) -> float:
    return sum(cost.seconds.values()) / 3600


def describe_cost(grid: GridCost, title: str = "estimated cost") -> str:
    """The dry-run's cost table: per stage the counts and the estimated H100 hours, then the total."""
    cost = grid.total
    lines = [f"{title}: {grid.runs} runs + {grid.source_models} source models"]
    for stage in STAGES:
        if not (cost.steps[stage] or cost.passes[stage] or cost.evaluated[stage]):
            continue
        what = []
        if cost.steps[stage]:
            what.append(f"{cost.steps[stage]:,.0f} optimiser steps")
        if cost.passes[stage] and not cost.steps[stage]:
            expected = " (expected)" if stage in ("oracle passes", "per-language passes") else ""
            what.append(f"{cost.passes[stage]:,.0f} forward/backward passes{expected}")
        if cost.evaluations[stage]:
            what.append(f"{cost.evaluations[stage]:,.0f} evaluation points")
        if cost.evaluated[stage]:
            what.append(f"{cost.evaluated[stage]:,.0f} examples predicted")
        hours = f"{cost.seconds[stage] / 3600:9.1f} h" if cost.timed else "        -  "
        lines.append(f"  {stage:<28} {hours}  {', '.join(what)}")
    if cost.timed and cost.shape.cpu_cores:
        lines.append(f"  {'total':<28} {gpu_hours(cost):9.2f} h  {cost.shape.unit}: about "
                     f"{gpu_hours(cost) * 60 / cost.shape.cpu_cores:.0f} min on the {cost.shape.cpu_cores}-core "
                     f"machine with --jobs {cost.shape.cpu_cores} (an estimate: {cost.shape.source})")
    elif cost.timed:
        lines.append(f"  {'total':<28} {gpu_hours(cost):9.1f} h  GPU-hours on one H100 (an estimate: per-pass times "
                     f"measured for xlm-roberta-large, extrapolated for base and for fp32; see fslib.batch.cost)")
    else:
        lines.append("  no time estimate: some run's model is neither xlm-roberta-large nor -base nor "
                     "multilingual-e5-small (timed shapes)")
    if grid.per_co_training_run:
        p = grid.per_co_training_run
        lines.append(f"  per co-training run: {p['optimiser steps']:,.0f} optimiser steps, "
                     f"{p['oracle passes per optimiser step']:.2f} oracle passes per step (gradient-co-train runs), "
                     f"{p['dev evaluations']:,.0f} dev evaluations")
    if grid.estimated_sizes:
        lines.append(f"  data sizes of {', '.join(sorted(grid.estimated_sizes))} from XTREME's published sizes "
                     f"(the data files are not there; the tasks' cost_sizes in fslib.core.tasks)")
    return "\n".join(lines)


def compare(grid: GridCost, reference: GridCost, name: str, reference_name: str) -> str:
    """What one preset costs relative to another (e.g. the authors' against the paper's)."""
    a, b = grid.per_co_training_run, reference.per_co_training_run
    lines = [f"{name} against {reference_name}:"]
    if a and b:
        for key, label in (("oracle passes per optimiser step", "oracle passes per optimiser step (gradient-co-train)"),
                           ("dev evaluations", "dev evaluations per co-training run"),
                           ("optimiser steps", "optimiser steps per co-training run")):
            ratio = f" ({a[key] / b[key]:.1f}x)" if b[key] else ""
            lines.append(f"  {label}: {a[key]:,.2f} against {b[key]:,.2f}{ratio}")
    if grid.total.timed and reference.total.timed and gpu_hours(reference.total):
        lines.append(f"  GPU-hours of the grid: {gpu_hours(grid.total):,.1f} against {gpu_hours(reference.total):,.1f} "
                     f"({gpu_hours(grid.total) / gpu_hours(reference.total):.1f}x)")
    return "\n".join(lines)


def preset_cost(path: Path | str) -> GridCost:
    from fslib.batch.params import load_params

    return grid_cost(load_params(path).runs)


def dry_run_report(param_files: list[Path | str], configs: list[RunConfig], pending: list[RunConfig]) -> str:
    """What `fslib batch --dry-run` prints after the list of runs: the cost of the whole grid and of the runs
    still to do; for a preset in params/authors, the same task's params/paper preset beside it."""
    grid = grid_cost(configs)
    lines = [describe_cost(grid, "estimated cost of the grid")]
    if pending and len(pending) != len(configs):
        lines.append(describe_cost(grid_cost(pending), "estimated cost of the runs still to do"))
    for path in map(Path, param_files):
        paper = path.parent.parent / "paper" / path.name
        if path.parent.name == "authors" and paper.is_file():
            lines.append(compare(preset_cost(path), preset_cost(paper), str(path), str(paper)))
    return "\n".join(lines)
