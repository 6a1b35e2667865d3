"""The shared stages every method is composed of: source-training (cached on disk, trained once), target-adapting,
co-training (with or without stochastic gradient surgery) and evaluation. `Run` holds what one run needs: its
resolved config, the tokenizer, the data (loaded and tokenised once per language and split), the device, and the
rows it has measured so far.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pandas as pd
import torch
from datasets import Dataset, concatenate_datasets
from filelock import FileLock
from transformers import AutoTokenizer, PreTrainedModel

from fslib.config import RunConfig
from fslib.data import load_shots, load_split, stable_seed
from fslib.data.ud import ud_files
from fslib.data.xtreme import xtreme_path
from fslib.evaluation import evaluate
from fslib.features import Collator, build_features
from fslib.languages import SOURCE_LANG
from fslib.models import load_model
from fslib.results import Row
from fslib.surgery import StochasticGradientSurgery
from fslib.tasks import get_task
from fslib.training import StageSettings, TrainOutcome, autocast, to_device, train

SOURCE_RECORD = "source_training.json"  # written last: its presence marks a finished source model


def stage_settings(config: RunConfig, *, adapting: bool) -> StageSettings:
    """Target-adapting: batch K, no accumulation, `target_epochs`; otherwise the source/co-training settings."""
    c = config.resolved()
    return StageSettings(
        epochs=c.target_epochs if adapting else c.epochs,
        batch_size=c.target_batch_size if adapting else c.train_batch_size,
        grad_accum=1 if adapting else c.grad_accum, learning_rate=c.learning_rate, warmup_ratio=c.warmup_ratio,
        weight_decay=c.weight_decay, adam_epsilon=c.adam_epsilon, max_grad_norm=c.max_grad_norm, bf16=c.bf16)


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def source_model_folder(config: RunConfig) -> Path:
    """Where the source-trained model of `config` lives: one folder per (task, model, seed, hyper-parameters,
    data), shared by zero-shot, ord-FS, ord-FS+dev and co-FT. The data and a local model count by their files'
    sizes and modification times, so regenerating them trains anew."""
    c = config.resolved()
    stamps = []
    if c.source == "xtreme":
        splits = ("train",) if c.task == "tydiqa" else ("train", "dev")
        stamps += [_stamp(xtreme_path(c.data_dir, c.task, SOURCE_LANG, split)) for split in splits]
    if c.source == "ud":
        stamps += [_stamp(path) for path in ud_files(c.data_dir, SOURCE_LANG, c.treebank(SOURCE_LANG))]
    if Path(c.model).is_dir():
        stamps += [_stamp(path) for path in sorted(Path(c.model).iterdir()) if path.is_file()]
    key = stable_seed(c.task, c.model, c.seed, c.source, json.dumps(vars(stage_settings(c, adapting=False)),
                      sort_keys=True), c.max_length, c.doc_stride, c.max_train_examples, c.max_eval_examples, *stamps)
    return Path(c.output_dir) / "source_models" / f"{c.task}-seed{c.seed}-{key:016x}"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Run:
    def __init__(self, config: RunConfig):
        self.config = config.resolved()
        self.task = get_task(self.config.task)
        self.device = resolve_device(self.config.device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.config.model)
        self.collator = Collator(self.task, self.tokenizer)
        self.rows: list[Row] = []
        self.tables: dict[str, pd.DataFrame] = {}  # extra per-run tables (surgery log, gradient similarity)
        self._examples: dict[tuple[str, str], Dataset] = {}
        self._features: dict[tuple[str, str], Dataset] = {}

    @property
    def languages(self) -> list[str]:
        """The evaluated languages, the source first."""
        return self.config.languages

    @property
    def targets(self) -> list[str]:
        """The target languages whose shots are trained on."""
        return self.config.targets

    # ---- data -------------------------------------------------------------------------------------------
    def examples(self, lang: str, split: str) -> Dataset:
        """One split of one language ("shots" for the K shots), capped as the config says."""
        key = (lang, split)
        if key not in self._examples:
            c = self.config
            if split == "shots":
                data = load_shots(c.task, lang, c.k, c.seed, source=c.source, data_dir=c.data_dir,
                                  treebank=c.treebank(lang))
            else:
                data = load_split(c.task, lang, split, source=c.source, data_dir=c.data_dir,
                                  k=c.k if lang != SOURCE_LANG and c.k else None, seed=c.seed,
                                  treebank=c.treebank(lang))
                cap = c.max_train_examples if split == "train" else c.max_eval_examples
                if cap is not None and len(data) > cap:
                    data = data.select(range(cap))
            self._examples[key] = data
        return self._examples[key]

    def features(self, lang: str, split: str) -> Dataset:
        key = (lang, split)
        if key not in self._features:
            self._features[key] = build_features(self.examples(lang, split), self.task, self.tokenizer,
                                                 self.config.max_length, self.config.doc_stride)
        return self._features[key]

    def settings(self, *, adapting: bool) -> StageSettings:
        return stage_settings(self.config, adapting=adapting)

    # ---- evaluation -------------------------------------------------------------------------------------
    def score(self, model: torch.nn.Module, lang: str, split: str) -> dict[str, float]:
        return evaluate(model, self.task, self.examples(lang, split), self.features(lang, split), self.collator,
                        self.config.eval_batch_size, self.device, self.config.bf16,
                        description=f"evaluating {lang} {split}", progress=self.config.progress)

    def measure(self, model: torch.nn.Module, langs: list[str], split: str, *, row_split: str | None = None,
                epoch: int | None = None, step: int | None = None) -> dict[str, dict[str, float]]:
        """Score `langs` on `split` and record the rows (under `row_split`, default the split itself)."""
        scores = {lang: self.score(model, lang, split) for lang in langs}
        for lang, metrics in scores.items():
            self.rows += [Row(lang, row_split or split, metric, value, epoch, step) for metric, value in metrics.items()]
        return scores

    def test_rows(self, model: torch.nn.Module, langs: list[str], outcome: TrainOutcome | None = None) -> None:
        """The final scores of `langs` (split=test), tagged with the selected epoch and the step count."""
        self.measure(model, langs, "test", epoch=outcome.selected_epoch if outcome else None,
                     step=outcome.steps if outcome else None)

    def curve_langs(self, langs: list[str]) -> list[str]:
        """The languages of `langs` whose curves are wanted (`curve_langs`; the source always)."""
        wanted = self.config.curve_langs
        return [lang for lang in langs if wanted is None or lang == SOURCE_LANG or lang in wanted]

    def curves(self, dev_langs: list[str], selection_lang: str | None):
        """An epoch-end callback: dev scores of `dev_langs` (and, with `test_curves`, test scores of those of
        them in `curve_langs`) as rows; returns the selection score on `selection_lang`'s dev set."""
        def on_epoch_end(model: torch.nn.Module, epoch: int) -> float | None:
            scores = self.measure(model, dev_langs, "dev", epoch=epoch)
            if self.config.test_curves:
                self.measure(model, self.curve_langs(dev_langs), "test", row_split="test-curve", epoch=epoch)
            return scores[selection_lang][self.task.metric] if selection_lang else None
        return on_epoch_end

    # ---- stages -----------------------------------------------------------------------------------------
    def source_model_dir(self) -> Path:
        """The source-trained model's folder, trained first if missing, under a file lock so that concurrent runs
        wait for one another instead of training twice."""
        folder = source_model_folder(self.config)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{folder}.lock"):
            if not (folder / SOURCE_RECORD).exists():
                self._train_source_model(folder, self.settings(adapting=False))
        return folder

    def _train_source_model(self, folder: Path, settings: StageSettings) -> None:
        torch.manual_seed(stable_seed("source-training", self.config.seed) % 2**63)
        model = load_model(self.config.model, self.task)
        curve: list[dict] = []

        def on_epoch_end(model: torch.nn.Module, epoch: int) -> float:
            scores = self.score(model, SOURCE_LANG, "dev")
            curve.append({"epoch": epoch, **scores})
            return scores[self.task.metric]

        outcome = train(model, self.features(SOURCE_LANG, "train"), settings, collator=self.collator,
                        seed=self.config.seed, device=self.device, on_epoch_end=on_epoch_end, select="best",
                        description=f"source-training {self.config.task}", progress=self.config.progress)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial)
        self.tokenizer.save_pretrained(partial)
        (partial / SOURCE_RECORD).write_text(json.dumps(
            {"selected_epoch": outcome.selected_epoch, "steps": outcome.steps, "dev_curve": curve,
             "trained_by": f"{socket.gethostname()}:{os.getpid()}"}, indent=1))
        partial.rename(folder)

    def source_model(self) -> tuple[PreTrainedModel, TrainOutcome]:
        """A fresh copy of the source-trained model, and how it was selected (its dev curve becomes rows)."""
        folder = self.source_model_dir()
        record = json.loads((folder / SOURCE_RECORD).read_text())
        outcome = TrainOutcome(selected_epoch=record["selected_epoch"], steps=record["steps"])
        return load_model(folder, self.task), outcome

    def source_dev_rows(self) -> None:
        """The source-training dev curve (split=dev, lang=en), as recorded when the source model was trained."""
        record = json.loads((self.source_model_dir() / SOURCE_RECORD).read_text())
        for point in record["dev_curve"]:
            self.rows += [Row(SOURCE_LANG, "dev", metric, value, point["epoch"]) for metric, value in point.items()
                          if metric != "epoch"]

    def adapt(self, langs: list[str], *, select_on_dev: bool) -> tuple[PreTrainedModel, TrainOutcome]:
        """Target-adapting: fine-tune the source-trained model on the shots of `langs` (batch K, last checkpoint,
        or the best on the target dev set of the single language with `select_on_dev`)."""
        if select_on_dev and len(langs) != 1:
            raise ValueError("selection on a target dev set adapts one language at a time")
        model, _ = self.source_model()
        torch.manual_seed(stable_seed("adapt", self.config.seed, *langs) % 2**63)
        shots = concatenate_datasets([self.features(lang, "shots") for lang in langs])
        dev_langs = langs if select_on_dev else []  # ord-FS and co-FT never look at a dev set
        outcome = train(model, shots, self.settings(adapting=True), collator=self.collator, seed=self.config.seed,
                        device=self.device, on_epoch_end=self.curves(dev_langs, langs[0] if select_on_dev else None),
                        select="best" if select_on_dev else "last",
                        description=f"adapting to {'+'.join(langs)}", progress=self.config.progress)
        return model, outcome

    def co_train(self, *, surgery: bool) -> tuple[PreTrainedModel, TrainOutcome]:
        """One step: train the pre-trained model on the source train set and the shots of every target, shuffled
        together; the best epoch on the source dev set is kept."""
        c = self.config
        torch.manual_seed(stable_seed("co-train", c.seed) % 2**63)
        model = load_model(c.model, self.task)
        data = concatenate_datasets([self.features(SOURCE_LANG, "train")] +
                                    [self.features(lang, "shots") for lang in self.targets])
        dev_langs = [SOURCE_LANG] + (self.curve_langs(self.targets) if c.target_dev_curves else [])
        outcome = train(model, data, self.settings(adapting=False), collator=self.collator, seed=c.seed,
                        device=self.device, on_epoch_end=self.curves(dev_langs, SOURCE_LANG), select="best",
                        surgery=self.surgery(model) if surgery else None, surgery_granularity=c.surgery_granularity,
                        description=f"{'gradient' if surgery else 'naive'}-co-training {c.task}",
                        progress=c.progress)
        if outcome.surgery_log:
            self.tables["surgery"] = pd.DataFrame(outcome.surgery_log)
        return model, outcome

    def oracle_batches(self):
        """`oracle(lang)` -> a collated batch: a target's shots (a random batch of them when they are more than a
        training batch), or, for the source, a random batch of min(K, train batch size) source examples (the
        authors' code)."""
        c = self.config
        generator = torch.Generator().manual_seed(stable_seed("oracle-batches", c.seed) % 2**63)
        fixed: dict[str, dict] = {}

        def random_batch(features: Dataset, size: int) -> dict:
            chosen = torch.randperm(len(features), generator=generator)[:size].tolist()
            return self.collator(features.select(chosen).to_list())

        def oracle(lang: str) -> dict:
            if lang == SOURCE_LANG:
                return random_batch(self.features(SOURCE_LANG, "train"), min(c.k, c.train_batch_size))
            shots = self.features(lang, "shots")
            if len(shots) > c.train_batch_size:
                return random_batch(shots, c.train_batch_size)
            if lang not in fixed:
                fixed[lang] = self.collator(shots.to_list())
            return dict(fixed[lang])
        return oracle

    def surgery(self, model: torch.nn.Module):
        c = self.config
        languages = list(self.targets) + ([SOURCE_LANG] if c.oracle_include_source else [])
        oracle = self.oracle_batches()

        def oracle_loss(lang: str) -> torch.Tensor:
            inputs, _ = to_device(oracle(lang), self.device)
            with autocast(self.device, c.bf16):
                return model(**inputs).loss

        return lambda grads: StochasticGradientSurgery(grads, languages, c.alpha, stable_seed("surgery", c.seed),
                                                       oracle_loss)

