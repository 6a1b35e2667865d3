"""A run's configuration: one dataclass, saved as JSON beside the run's result rows.

A run is one task, method, K and seed over a set of languages. Hyper-parameters left at None take the task's
defaults from the paper (SPEC.md §3), filled in by `resolved()`. The config hash covers every field that says
what is computed (not where or on which device), so a batch can tell a finished run from one to redo; it does
not cover the contents of the data files or of a local model folder: after replacing those, remove the runs
(source models notice such changes by themselves, see fslib.stages.source_model_folder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from fslib.languages import SOURCE_LANG
from fslib.tasks import get_task

METHODS = ("zero-shot", "ord-FS", "ord-FS+dev", "co-FT", "naive-co-train", "gradient-co-train")
# Fields that say where and how fast a run goes, not what it computes: left out of the config hash.
NOT_HASHED = ("output_dir", "device", "eval_batch_size", "progress", "notes")


@dataclass
class RunConfig:
    task: str  # ner | pos | tydiqa | xnli
    method: str  # one of METHODS
    k: int  # shots per target language (per class for XNLI); 0 for zero-shot
    seed: int  # the run's seed: shots, initialisation, data order, surgery draws
    model: str  # any AutoModel checkpoint: hub name or local folder
    source: str = "xtreme"  # "xtreme" (on-disk layout under data_dir), "hub", or "ud" (POS: UD treebanks)
    data_dir: str | None = None
    # source "ud": the treebank of a language with several, e.g. {"en": "PUD"}; a language not named takes the
    # default of fslib.data.ud (a treebank with a train file, then the largest)
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
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0  # never applied to biases and LayerNorm weights
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    max_length: int | None = None  # 128 (TyDiQA 384)
    doc_stride: int | None = None  # TyDiQA windows overlap
    # stochastic gradient surgery (gradient-co-train)
    alpha: float | None = None  # probability of surgery per step; 1.0 NER/POS, 0.1 TyDiQA/XNLI
    oracle_include_source: bool = True  # English is an oracle language too (the authors' code)
    surgery_granularity: str = "step"  # "step" (once per optimiser step) or "micro_batch" (the authors' code)
    # evaluation and diagnostics
    target_dev_curves: bool = True  # co-training: evaluate target dev sets every epoch (split=dev rows)
    test_curves: bool = False  # with the dev curves, test scores every epoch (split=test-curve; Figure 5)
    curve_langs: list[str] | None = None  # targets whose curves are recorded beyond what selection needs; None: all
    gradient_similarity: bool = False  # co-training: per-language gradient cosines of the final model
    similarity_source_batches: int = 100  # English gradient averaged over this many batches
    max_train_examples: int | None = None  # cap on the source train set (CPU demos); None: all
    max_eval_examples: int | None = None  # cap on each dev/test set (CPU demos); None: all
    eval_batch_size: int = 64
    bf16: bool = True  # bf16 autocast on CUDA (always fp32 on CPU)
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    progress: bool = True
    notes: str = ""

    def resolved(self) -> RunConfig:
        """A copy with every None hyper-parameter replaced by the task's default, validated."""
        task = get_task(self.task)
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid methods: {', '.join(METHODS)}")
        if (self.k == 0) != (self.method == "zero-shot"):
            raise ValueError(f"k={self.k} with method {self.method!r}: zero-shot has k=0, every other method k>=1")
        if self.surgery_granularity not in ("step", "micro_batch"):
            raise ValueError(f"surgery_granularity must be 'step' or 'micro_batch', not {self.surgery_granularity!r}")
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
        epochs = self.epochs or task.epochs
        return dataclasses.replace(
            self, languages=languages,
            learning_rate=self.learning_rate or task.learning_rate, epochs=epochs,
            target_epochs=self.target_epochs or epochs, target_batch_size=self.target_batch_size or max(self.k, 1),
            max_length=self.max_length or task.max_length, doc_stride=self.doc_stride or task.doc_stride,
            alpha=task.alpha if self.alpha is None else self.alpha)

    def treebank(self, lang: str) -> str | None:
        """source "ud": the treebank chosen for `lang` (None: fslib.data.ud's default)."""
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
        hashed = {key: value for key, value in self.resolved().to_dict().items() if key not in NOT_HASHED}
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
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{path}: unknown RunConfig keys {unknown}; valid keys: {', '.join(sorted(names))}")
        return cls(**values)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


def run_dir(config: RunConfig) -> Path:
    """outputs/runs/<task>/<method label>/k<K>/seed<S>[/<target languages>] (the last part only for runs given
    `target_langs`: gradient-single and gradient-subset)."""
    resolved = config.resolved()
    folder = Path(resolved.output_dir) / "runs" / resolved.task / resolved.label / f"k{resolved.k}" / \
        f"seed{resolved.seed}"
    if resolved.target_langs is not None:
        folder /= "+".join(resolved.target_langs)
    return folder
