"""A run's configuration: one dataclass, saved as JSON beside the run's result rows.

A run is one task, method, K and seed over a set of languages. Hyper-parameters left at None take the task's defaults
from the paper (docs/protocol.md), filled in by `resolved()`. The config hash covers every field that says what is
computed (not where or on which device), so a batch can tell a finished run from one to redo; it does not cover the
contents of the data files or of a local model folder: after replacing those, remove the runs (source models notice such
changes by themselves, see fslib.store.source_models.source_model_folder). Paths in it (data_dir, a local model folder)
count relative to `output_dir` (`portable_path`), so that moving or copying a checkout with its outputs and data, or
another mount path on cluster nodes, keeps every finished run done. The hash is part of a run's folder (`run_dir`), so
runs that compute different things never share one."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fslib.core.containment import check_name, inside
from fslib.core.field_limits import check_limits
from fslib.core.languages import SOURCE_LANG
from fslib.core.methods import METHODS
from fslib.core.surgeons import DEFAULT_SURGEON, GRANULARITIES, check_surgeon, check_surgeon_args
from fslib.core.tasks import get_task

PRECISIONS = ("bf16", "fp16", "fp32")
CAPTURED_PRECISIONS = ("bf16", "fp32")  # the oracle pass runs from CUDA graphs (fp16's loss scaling stays eager)
LEGACY_BF16 = {"bf16": True, "fp32": False}  # how configs said it before `precision`
# Fields added after the first release: at their defaults they compute what runs without them did, so they stay
# out of the hash and finished runs stay done.
ADDED_FIELDS = ("ud_treebanks", "warmup_steps", "max_query_length", "sampler", "oracle_batch_size", "selection",
                "select_every_steps", "hold_out_source_dev", "save_model", "surgeon", "shot_seed", "surgeon_args",
                "scheduler_order", "doc_stride_is_step", "xtreme_tagging_inputs", "epoch_end", "optimizer")
# How `max_train_examples` picks its rows (fslib.data.capped_rows): part of a capped run's hash, because capped runs
# made before it took the first rows
TRAIN_CAP_RULE = "seeded-sample"
# Fields that say where and how fast a run goes, not what it computes: left out of the config hash.
NOT_HASHED = ("output_dir", "device", "eval_batch_size", "progress", "notes", "tensorboard", "cuda_graphs",
              "checkpoint_every_epoch")


@dataclass
class RunConfig:
    task: str  # ner | pos | tydiqa | xnli
    method: str  # one of METHODS
    k: int  # shots per target language (per class for XNLI); 0 for zero-shot
    seed: int  # the run's seed: initialisation, data order, surgery draws, and the shots unless shot_seed is set
    model: str  # any AutoModel checkpoint: hub name or local folder
    source: str = "xtreme"  # "xtreme" (on-disk layout under data_dir), "hub", "ud" (POS: UD treebanks) or "uner"
    # (NER: Universal NER treebanks)
    data_dir: str | None = None
    # source "ud" or "uner": the treebank of a language with several, e.g. {"en": "PUD"}; a language not named takes the
    # default of fslib.formats.ud (a treebank with a train file, then the largest)
    ud_treebanks: dict[str, str] | None = None
    languages: list[str] | None = None  # evaluated languages incl. the source; None: all of the task's
    target_langs: list[str] | None = None  # targets whose shots are trained on; None: all but the source
    method_label: str | None = None  # the method's name in result rows (gradient-single, ...); None: method
    output_dir: str = "outputs"
    # optimisation (None: the task's default from the paper)
    learning_rate: float | None = None
    epochs: int | None = None  # source-training and co-training epochs
    target_epochs: int | None = None  # target-adapting epochs (ord-FS, co-FT); None: same as epochs
    train_batch_size: int = 32  # effective batch of source-training and co-training
    target_batch_size: int | None = None  # effective batch of target-adapting; None: K
    grad_accum: int = 1  # micro-batches per optimiser step
    warmup_ratio: float = 0.0  # share of the optimiser steps spent warming up the learning rate
    warmup_steps: int | None = None  # warm-up in optimiser steps; overrides warmup_ratio when set (authors: TyDiQA 500)
    weight_decay: float = 0.0  # never applied to biases and LayerNorm weights
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    max_length: int | None = None  # 128 (TyDiQA 384)
    doc_stride: int | None = None  # TyDiQA windows overlap by this many tokens ...
    doc_stride_is_step: bool = False  # ... or, true, each window moves on by it (XTREME's SQuAD processor)
    # NER/POS inputs as XTREME's utils_tag.py builds them for XLM-R: words without sub-word pieces fed as <unk>,
    # sentences ending in </s></s>, segments of max_length - 3 pieces; false: such words left out (scored as the
    # first label), one </s>, max_length - 2
    xtreme_tagging_inputs: bool = False
    max_query_length: int | None = None  # TyDiQA: questions cut to this many tokens; None: never cut (authors: 64)
    sampler: str = "length_grouped"  # "length_grouped" (random mega-batches sorted by length) or "random"
    # "optimizer_first" (the paper preset; the authors' XNLI and TyDiQA scripts) or "scheduler_first" (their NER/POS
    # script, run_tag.py, steps the learning-rate schedule before the optimiser: every step uses the next step's rate)
    scheduler_order: str = "optimizer_first"
    # "partial_step": an epoch's last micro-batches make a step of their own; "carry" (the authors' scripts): steps per
    # epoch rounded down, leftover micro-batches' gradients join the next epoch's first step
    epoch_end: str = "partial_step"
    # "torch_adamw" (the paper preset) or "transformers_adamw" (the authors' scripts: transformers' former AdamW, eps
    # before the bias correction and weight decay after the update; fslib.engine.optimizers)
    optimizer: str = "torch_adamw"
    # stochastic gradient surgery (gradient-co-train)
    alpha: float | None = None  # probability of surgery per step; 1.0 NER/POS, 0.1 TyDiQA/XNLI
    oracle_include_source: bool = True  # English is an oracle language too (the authors' code)
    surgeon: str = DEFAULT_SURGEON  # which gradient surgery (fslib.core.surgeons: a name, or "module:Class")
    surgeon_args: dict | None = None  # the surgeon's own parameters, e.g. {"beta": 0.01} (fslib.core.surgeons)
    surgery_granularity: str = "step"  # "step" (once per optimiser step) or "micro_batch" (the authors' code)
    oracle_batch_size: int | None = None  # None: a target's oracle is its shots (a random train batch of them if
    # more), English's min(K, train batch); n: the authors' rule, English min(K, n), a target all its K shots
    # (XNLI, which has 3K: a random min(K, n) of them)
    # model selection (source-training and co-training, on the source dev set)
    selection: str = "best"  # "best" (highest source dev score) or "last" (authors' TyDiQA)
    select_every_steps: int | None = None  # evaluate every N optimiser steps and at the end; None: every epoch
    hold_out_source_dev: bool = True  # TyDiQA: a fixed tenth of the English train file is the source dev set
    # evaluation and diagnostics
    target_dev_curves: bool = True  # co-training: evaluate target dev sets every epoch (split=dev rows)
    test_curves: bool = False  # with the dev curves, test scores every epoch (split=test-curve; Figure 5)
    curve_langs: list[str] | None = None  # targets whose curves are recorded beyond what selection needs; None: all
    gradient_similarity: bool = False  # co-training: per-language gradient cosines of the final model
    similarity_source_batches: int = 100  # English gradient averaged over this many batches
    # cap on the source train set (CPU demos, small grids): a sample of this many rows drawn with the run's seed, so
    # that seeds resample it (fslib.data.capped_rows); None: all
    max_train_examples: int | None = None
    max_eval_examples: int | None = None  # cap on each dev/test set (CPU demos); None: all
    eval_batch_size: int = 64
    precision: str = "bf16"  # bf16 | fp16 (loss-scaled; GPUs without bf16) | fp32 autocast on CUDA; fp32 on CPU
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    cuda_graphs: bool = True  # on CUDA (bf16/fp32), replay the surgery's oracle pass from CUDA graphs (faster)
    tensorboard: bool = False  # also write TensorBoard event files to the run's tensorboard/ (fslib.engine.tracking)
    # the trained model, saved (save_pretrained, with the tokenizer) in the run's model/ folder: "best" (the
    # selected checkpoint, which the test rows measure) or "last" (the final weights). Default "none": a grid of
    # hundreds of XLM-R large runs would fill terabytes (2.2 GB a model)
    save_model: str = "none"
    # co-training and source-training write a checkpoint at every epoch end but the last (one file, overwritten;
    # XLM-R large: ~7 GB), so that a killed run resumes from its last finished epoch with the same result
    # (fslib.engine.checkpoint)
    checkpoint_every_epoch: bool = True
    progress: bool = True
    notes: str = ""
    # the seed of the K-shot draw, apart from the training randomness; None: the run's seed (runs made before this
    # field keep their hash). A grid's `shot_seeds` axis sets it, so that shot-choice and training variance part
    shot_seed: int | None = None

    @property
    def shots_seed(self) -> int:
        """The seed that draws the K shots (and holds them out of a target's train split)."""
        return self.seed if self.shot_seed is None else self.shot_seed

    def resolved(self) -> RunConfig:
        """A copy with every None hyper-parameter replaced by the task's default, validated."""
        task = get_task(self.task)
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid methods: {', '.join(METHODS)}")
        if (self.k == 0) != (self.method == "zero-shot"):
            raise ValueError(f"k={self.k} with method {self.method!r}: zero-shot has k=0, every other method k>=1")
        check_values(self)
        check_surgeon(self.surgeon, self.surgery_granularity)  # a known surgeon, or "module:Class"
        check_limits(self)
        check_path_names(self)
        if not task.has_source_dev(self.hold_out_source_dev) and self.selection == "best":
            raise ValueError(f"hold_out_source_dev: false leaves {task.title} without a source dev set; "
                             "use selection: last with it (as the authors do)")
        if self.method == "zero-shot" and self.save_model == "last" and self.selection == "best":
            raise ValueError("save_model: last with zero-shot: its model is the source model, kept at its selected "
                             "checkpoint only; use save_model: best (or selection: last)")
        if self.train_batch_size % self.grad_accum:
            raise ValueError(f"train_batch_size {self.train_batch_size} is not a multiple of grad_accum "
                             f"{self.grad_accum}")
        languages = list(self.languages or task.languages)
        if SOURCE_LANG not in languages:
            languages.insert(0, SOURCE_LANG)
        if self.target_langs is not None and not self.target_langs:
            raise ValueError("target_langs must name at least one target language (or be None for all)")
        unknown = [lang for lang in self.target_langs or [] if lang not in languages or lang == SOURCE_LANG]
        if unknown:
            raise ValueError(f"target_langs {unknown} must be evaluated languages other than {SOURCE_LANG!r}; "
                             f"languages: {', '.join(languages)}")

        def given(value, default):  # None means "the default"; zero is a value (and validated as one)
            return default if value is None else value

        epochs = given(self.epochs, task.epochs)
        return dataclasses.replace(
            self, languages=languages, learning_rate=given(self.learning_rate, task.learning_rate), epochs=epochs,
            target_epochs=given(self.target_epochs, epochs), target_batch_size=given(self.target_batch_size,
                                                                                     max(self.k, 1)),
            max_length=given(self.max_length, task.max_length), doc_stride=given(self.doc_stride, task.doc_stride),
            alpha=given(self.alpha, task.alpha), surgeon_args=check_surgeon_args(self.surgeon, self.surgeon_args))

    def treebank(self, lang: str) -> str | None:
        """source "ud" or "uner": the treebank chosen for `lang` (None: fslib.formats.ud's default)."""
        return (self.ud_treebanks or {}).get(lang)

    @property
    def targets(self) -> list[str]:
        """The co-trained (or adapted) target languages: `target_langs`, or every evaluated language but the
        source."""
        if self.target_langs is not None:
            return list(self.target_langs)
        return [lang for lang in self.resolved().languages if lang != SOURCE_LANG]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def config_hash(self) -> str:
        defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
        hashed = {key: value for key, value in self.resolved().to_dict().items() if key not in NOT_HASHED
                  and not (key in ADDED_FIELDS and value == defaults[key])}
        for name in ("data_dir", "model"):  # where the checkout lies is not what a run computes
            if hashed[name] is not None and (name == "data_dir" or is_local_path(hashed[name])):
                hashed[name] = portable_path(hashed[name], self.output_dir)
        if hashed["max_train_examples"] is not None:  # the cap took the first rows before it drew a seeded sample:
            hashed["train_cap"] = TRAIN_CAP_RULE  # capped runs compute something else now (uncapped keep their hash)
        if hashed["precision"] in LEGACY_BF16:  # runs made before `precision` replaced `bf16` keep their hash
            hashed["bf16"] = LEGACY_BF16[hashed.pop("precision")]
        return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return self.method_label or self.method

    @property
    def run_id(self) -> str:
        return f"{self.task}-{self.label}-k{self.k}-seed{self.seed}-{self.config_hash}"

    def save(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> RunConfig:
        values = json.loads(Path(path).read_text())
        if "bf16" in values and "precision" not in values:  # a config saved before `precision` replaced `bf16`
            values["precision"] = "bf16" if values.pop("bf16") else "fp32"
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{path}: unknown RunConfig keys {unknown}; valid keys: {', '.join(sorted(names))}")
        return cls(**values)


# What each field may hold (None is allowed wherever the field's default is None).
AT_LEAST = {"k": 0, "epochs": 1, "target_epochs": 1, "train_batch_size": 1, "target_batch_size": 1, "grad_accum": 1,
            "warmup_steps": 0, "max_length": 8, "doc_stride": 1, "max_query_length": 1, "oracle_batch_size": 1,
            "select_every_steps": 1, "similarity_source_batches": 1, "max_train_examples": 1,
            "max_eval_examples": 1, "eval_batch_size": 1}  # integers
NUMBERS = {"learning_rate": (0.0, None, False), "adam_epsilon": (0.0, None, False),  # (lowest, highest,
           "max_grad_norm": (0.0, None, False), "weight_decay": (0.0, None, True),  # lowest allowed itself)
           "warmup_ratio": (0.0, 1.0, True), "alpha": (0.0, 1.0, True)}
CHOICES = {"surgery_granularity": GRANULARITIES, "sampler": ("length_grouped", "random"),
           "scheduler_order": ("optimizer_first", "scheduler_first"), "epoch_end": ("partial_step", "carry"),
           "optimizer": ("torch_adamw", "transformers_adamw"),
           "selection": ("best", "last"), "precision": PRECISIONS, "save_model": ("none", "best", "last")}
BOOLEANS = ("doc_stride_is_step", "xtreme_tagging_inputs",
            "oracle_include_source", "hold_out_source_dev", "target_dev_curves", "test_curves",
            "gradient_similarity", "tensorboard", "progress", "cuda_graphs", "checkpoint_every_epoch")


def check_values(config: RunConfig) -> None:
    """Types and ranges of every numeric, boolean and choice field; the message names the field and what is
    valid. Runs before anything is trained, so a typo in a parameter file costs nothing."""
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for name, low in AT_LEAST.items():
        value = getattr(config, name)
        if value is None and defaults[name] is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}{' (or null)' if defaults[name] is None else ''}, "
                             f"not {value!r}")
    for name, (low, high, low_allowed) in NUMBERS.items():
        value = getattr(config, name)
        if value is None and defaults[name] is None:
            continue
        valid = f"{'[' if low_allowed else '('}{low}, {f'{high}]' if high is not None else 'inf)'}"
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < low or \
                (value == low and not low_allowed) or (high is not None and value > high):
            raise ValueError(f"{name} must be a number in {valid}, not {value!r}")
    for name, valid in CHOICES.items():
        if getattr(config, name) not in valid:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, valid))}, not {getattr(config, name)!r}")
    for name in BOOLEANS:
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name} must be true or false, not {getattr(config, name)!r}")


def check_path_names(config: RunConfig) -> None:
    """The fields that become folder names (fslib.core.containment): the label, languages, treebanks."""
    check_name(config.label, "method_label (a grid's label)")
    for name in ("languages", "target_langs", "curve_langs"):
        for lang in getattr(config, name) or []:
            check_name(lang, name)
    for lang, treebank in (config.ud_treebanks or {}).items():
        check_name(lang, "ud_treebanks")
        check_name(treebank, f"ud_treebanks.{lang}")


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


def is_local_path(model: str) -> bool:
    """Whether a `model` string names a local folder rather than a hub id ("name" or "owner/name"): an existing
    path, an absolute one, one starting with "." or "~", or one with more parts than a hub id has. Decided without
    needing the folder to exist yet where the string says so, so a grid planned before its model is built hashes
    as it will after."""
    path = Path(model).expanduser()
    return path.exists() or path.is_absolute() or model.startswith((".", "~")) or len(Path(model).parts) > 2


def portable_path(path: str, anchor: str) -> str:
    """`path` as the config hash sees it: relative to `anchor` (the run's output_dir), both resolved, so that
    moving the two together keeps it; absolute where they share no folder but the filesystem root (a data set on
    a mount of its own stays put when the checkout moves)."""
    target, root = Path(path).expanduser().resolve(), Path(anchor).expanduser().resolve()
    common = Path(os.path.commonpath([target, root]))
    if common == Path(common.anchor):
        return target.as_posix()
    return Path(os.path.relpath(target, root)).as_posix()


def model_name(model: str) -> str:
    """The model as result rows name it: a hub id as given, a local folder by its name."""
    return Path(model).expanduser().name if is_local_path(model) else model


def run_dir(config: RunConfig) -> Path:
    """outputs/runs/<task>/<method label>/k<K>/seed<S>[/<target languages>]/<model>-<config hash>: the target
    languages only for runs given `target_langs` (gradient-single and gradient-subset); the last part makes the
    folder unique to what the run computes (another model, an alpha or learning-rate ablation, another grid's
    `config:` each get their own)."""
    return inside(Path(config.output_dir) / "runs", run_subpath(config), what=f"run {config.run_id}'s folder")


def run_subpath(config: RunConfig) -> Path:
    """A run's folder relative to `<output_dir>/runs` (see `run_dir`)."""
    resolved = config.resolved()
    folder = Path(resolved.task) / resolved.label / f"k{resolved.k}" / f"seed{resolved.seed}"
    if resolved.target_langs is not None:
        folder /= "+".join(resolved.target_langs)
    short = re.sub(r"[^A-Za-z0-9._+-]", "_", Path(model_name(resolved.model)).name)[:60] or "model"
    return folder / f"{short}-{config.config_hash}"


def stage_hyperparameters(config: RunConfig, *, adapting: bool) -> dict:
    """The hyper-parameters of one training stage (fslib.engine.training.StageSettings' fields): target-adapting uses
    batch K, no accumulation, `target_epochs`, selection per epoch and warm-up by ratio only (a K-shot stage has
    fewer steps than a fixed warm-up); source-training and co-training the others."""
    c = config.resolved()
    # scheduler_first only where set: source models trained before the field keep their key (fslib.store.ledger)
    order = {"scheduler_first": True} if c.scheduler_order == "scheduler_first" else {}
    order |= {"carry_leftovers": True} if c.epoch_end == "carry" and not adapting else {}
    order |= {"optimizer": c.optimizer} if c.optimizer != "torch_adamw" else {}
    return dict(epochs=c.target_epochs if adapting else c.epochs,
                batch_size=c.target_batch_size if adapting else c.train_batch_size,
                grad_accum=1 if adapting else c.grad_accum, learning_rate=c.learning_rate,
                warmup_ratio=c.warmup_ratio, warmup_steps=None if adapting else c.warmup_steps,
                weight_decay=c.weight_decay, adam_epsilon=c.adam_epsilon, max_grad_norm=c.max_grad_norm,
                precision=c.precision, sampler=c.sampler, eval_every_steps=None if adapting else c.select_every_steps,
                **order)
