"""The shared stages every method is composed of: source-training (cached on disk, trained once), target-adapting,
co-training (with or without stochastic gradient surgery) and evaluation. An `Experiment` holds what one run needs:
its resolved config, the tokenizer, the data (loaded and tokenised once per language and split), the device, and
the rows it has measured so far.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

import pandas as pd
import torch
from datasets import Dataset, concatenate_datasets
from filelock import FileLock
from transformers import AutoTokenizer, PreTrainedModel

from fslib.core.files import replace_folder, save_pretrained
from fslib.core.languages import SOURCE_LANG
from fslib.core.surgeons import oracle_batch_size, surgeon_kwargs
from fslib.core.tasks import get_task
from fslib.core.timing import PhaseTimer
from fslib.data import capped_rows, load_shots, load_split
from fslib.engine.captured_oracle import capturable, oracle_pass
from fslib.engine.checkpoint import CHECKPOINT_DIR, MODEL_DIR, EpochCheckpoint, copy_model, save_trained_model
from fslib.engine.evaluation import evaluate
from fslib.engine.features import Collator, build_features
from fslib.engine.models import load_model
from fslib.engine.surgery import FlatGradients, Surgeon, get_surgeon
from fslib.engine.tracking import TENSORBOARD_DIR, TRAINING_COLUMNS, TensorBoardLog
from fslib.engine.training import StageSettings, TrainOutcome, autocast, to_device, train
from fslib.formats.seeds import stable_seed
from fslib.store.config import RunConfig, run_dir, stage_hyperparameters
from fslib.store.results import Row
from fslib.store.source_models import read_source_record, source_model_done, source_model_folder, write_source_record


def stage_settings(config: RunConfig, *, adapting: bool) -> StageSettings:
    """Target-adapting: batch K, no accumulation, `target_epochs`, selection per epoch, warm-up by ratio only
    (a K-shot stage has fewer steps than a fixed warm-up); otherwise the source/co-training settings."""
    return StageSettings(**stage_hyperparameters(config, adapting=adapting))


def timed(phase: str):
    """Charge a `Run` method's wall time to `phase` of the run's timer (time spent in other timed methods it
    calls is theirs)."""
    def decorate(method):
        @functools.wraps(method)
        def timed_method(self, *args, **kwargs):
            with self.timer(phase):
                return method(self, *args, **kwargs)
        return timed_method
    return decorate


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Experiment:
    def __init__(self, config: RunConfig):
        self.config = config.resolved()
        self.task = get_task(self.config.task)
        self.device = resolve_device(self.config.device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.config.model)
        self.collator = Collator(self.task, self.tokenizer)
        self.rows: list[Row] = []
        self.tables: dict[str, pd.DataFrame] = {}  # extra per-run tables (surgery log, gradient similarity)
        self.predictions: list[dict] = []  # of the final test evaluation, for the task notebooks' views
        self.training_rows: list[dict] = []  # the training log of every stage (fslib.engine.tracking)
        self._source_tracked = False
        self._tensorboard: TensorBoardLog | None = None
        self._oracle_generator: torch.Generator | None = None  # draws the source's oracle batches
        self._examples: dict[tuple[str, str], Dataset] = {}
        self._features: dict[tuple[str, str], Dataset] = {}
        self.timer = PhaseTimer()  # seconds per phase (see the @timed methods), saved as timings.json

    @property
    def languages(self) -> list[str]:
        """The evaluated languages, the source first."""
        return self.config.languages

    @property
    def targets(self) -> list[str]:
        """The target languages whose shots are trained on."""
        return self.config.targets

    # ---- data -------------------------------------------------------------------------------------------
    @timed("load data")
    def examples(self, lang: str, split: str) -> Dataset:
        """One split of one language ("shots" for the K shots), capped as the config says."""
        key = (lang, split)
        if key not in self._examples:
            c = self.config
            if split == "shots":
                data = load_shots(c.task, lang, c.k, c.shots_seed, source=c.source, data_dir=c.data_dir,
                                  treebank=c.treebank(lang))
            else:
                data = load_split(c.task, lang, split, source=c.source, data_dir=c.data_dir,
                                  k=c.k if lang != SOURCE_LANG and c.k else None, seed=c.shots_seed,
                                  hold_out_source_dev=c.hold_out_source_dev, treebank=c.treebank(lang))
                if split == "train" and c.max_train_examples is not None:  # a seeded sample: seeds resample it
                    data = capped_rows(data, c.max_train_examples, c.seed)
                elif split != "train" and c.max_eval_examples is not None and len(data) > c.max_eval_examples:
                    data = data.select(range(c.max_eval_examples))  # the same evaluation rows for every seed
            self._examples[key] = data
        return self._examples[key]

    @timed("tokenise")
    def features(self, lang: str, split: str) -> Dataset:
        key = (lang, split)
        if key not in self._features:
            self._features[key] = build_features(self.examples(lang, split), self.task, self.tokenizer,
                                                 self.config.max_length, self.config.doc_stride,
                                                 self.config.max_query_length,
                                                 doc_stride_is_step=self.config.doc_stride_is_step,
                                                 xtreme_inputs=self.config.xtreme_tagging_inputs)
        return self._features[key]

    @property
    def loaded_examples(self) -> list[Dataset]:
        """Every split loaded so far (their cache files name a hub dataset's revision: fslib.engine.provenance)."""
        return list(self._examples.values())

    def settings(self, *, adapting: bool) -> StageSettings:
        return stage_settings(self.config, adapting=adapting)

    # ---- tracking ---------------------------------------------------------------------------------------
    @property
    def tensorboard(self) -> TensorBoardLog | None:
        """The run's TensorBoard log (`tensorboard: true`), opened on first use."""
        if self.config.tensorboard and self._tensorboard is None:
            self._tensorboard = TensorBoardLog(run_dir(self.config) / TENSORBOARD_DIR)
        return self._tensorboard

    def on_log(self, entry: dict) -> None:
        if self.config.tensorboard:
            self.tensorboard(entry)

    def track(self, training_log: list[dict]) -> None:
        """Add a stage's training log to the run's `training` table."""
        self.training_rows += training_log
        self.tables["training"] = pd.DataFrame(self.training_rows, columns=TRAINING_COLUMNS)
        if self.config.tensorboard:
            self.tensorboard.flush()

    # ---- evaluation -------------------------------------------------------------------------------------
    @timed("evaluate")
    def score(self, model: torch.nn.Module, lang: str, split: str,
              keep: list[dict] | None = None) -> dict[str, float]:
        return evaluate(model, self.task, self.examples(lang, split), self.features(lang, split), self.collator,
                        self.config.eval_batch_size, self.device, self.config.precision,
                        description=f"evaluating {lang} {split}", progress=self.config.progress, keep=keep)

    def measure(self, model: torch.nn.Module, langs: list[str], split: str, *, row_split: str | None = None,
                epoch: int | None = None, step: int | None = None,
                keep_predictions: bool = False) -> dict[str, dict[str, float]]:
        """Score `langs` on `split` and record the rows (under `row_split`, default the split itself)."""
        keep = self.predictions if keep_predictions else None
        scores = {lang: self.score(model, lang, split, keep) for lang in langs}
        for lang, metrics in scores.items():
            self.rows += [Row(lang, row_split or split, metric, value, epoch, step)
                          for metric, value in metrics.items()]
            if self.config.tensorboard and epoch is not None and (row_split or split) != "test":
                self.tensorboard.scores(row_split or split, lang, metrics, epoch)
        return scores

    def test_rows(self, model: torch.nn.Module, langs: list[str], outcome: TrainOutcome | None = None) -> None:
        """The final scores of `langs` (split=test), tagged with the selected checkpoint's epoch and step; their
        predictions are kept."""
        self.measure(model, langs, "test", epoch=outcome.selected_epoch if outcome else None,
                     step=outcome.selected_step if outcome else None, keep_predictions=True)

    def curve_langs(self, langs: list[str]) -> list[str]:
        """The languages of `langs` whose curves are wanted (`curve_langs`; the source always)."""
        wanted = self.config.curve_langs
        return [lang for lang in langs if wanted is None or lang == SOURCE_LANG or lang in wanted]

    @property
    def has_source_dev(self) -> bool:
        """False only for TyDiQA trained on its whole English train file (no tenth held out as a dev set)."""
        return self.task.has_source_dev(self.config.hold_out_source_dev)

    def curves(self, dev_langs: list[str], selection_lang: str | None):
        """An evaluation callback for `train`: dev scores of `dev_langs` (and, with `test_curves`, test scores of
        those of them in `curve_langs`) as rows; returns the selection score on `selection_lang`'s dev set."""
        def on_evaluate(model: torch.nn.Module, epoch: int, step: int) -> float | None:
            scores = self.measure(model, dev_langs, "dev", epoch=epoch, step=step)
            if self.config.test_curves:
                self.measure(model, self.curve_langs(dev_langs), "test", row_split="test-curve", epoch=epoch,
                             step=step)
            return scores[selection_lang][self.task.metric] if selection_lang else None
        return on_evaluate

    # ---- checkpoints and saved models -------------------------------------------------------------------
    def run_checkpoint(self, stage: str) -> EpochCheckpoint | None:
        """The epoch checkpoint of the run's training stage (`checkpoint_every_epoch`), in the run's folder: it
        keeps the rows measured so far and the oracle batches' generator with the training loop's state."""
        if not self.config.checkpoint_every_epoch:
            return None

        def save_extra() -> dict:
            generator = self._oracle_generator
            return {"rows": [vars(row) for row in self.rows],
                    "oracle_generator": generator.get_state() if generator is not None else None}

        def restore_extra(extra: dict) -> None:
            self.rows = [Row(**row) for row in extra["rows"]]
            if extra["oracle_generator"] is not None:
                self._oracle_generator.set_state(extra["oracle_generator"])

        return EpochCheckpoint(run_dir(self.config) / CHECKPOINT_DIR, f"{self.config.config_hash} {stage}",
                               save_extra, restore_extra)

    def keep_model(self, model: torch.nn.Module, which: str, name: str = "") -> None:
        """Save `model` in the run's model/ folder (model/<name> where a run trains several) when `save_model`
        is `which`: "best" for the selected weights, "last" for the final ones."""
        if self.config.save_model == which:
            save_trained_model(model, self.tokenizer, run_dir(self.config) / MODEL_DIR / name)

    def model_keeper(self, which: str, name: str = ""):
        """`keep_model` for `train`'s on_final_weights, or None when nothing is to be saved."""
        if self.config.save_model != which:
            return None
        return lambda model: self.keep_model(model, which, name)

    def keep_source_model(self) -> None:
        """A zero-shot run's model is its source model (at the selected checkpoint): copied in with `save_model`."""
        if self.config.save_model != "none":
            copy_model(self.source_model_dir(), run_dir(self.config) / MODEL_DIR)

    # ---- stages -----------------------------------------------------------------------------------------
    def source_model_dir(self) -> Path:
        """The source-trained model's folder, trained first if missing, under a file lock so that concurrent runs
        wait for one another instead of training twice."""
        folder = source_model_folder(self.config)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{folder}.lock"):
            if not source_model_done(folder):
                self._train_source_model(folder, self.settings(adapting=False))
        return folder

    @timed("train")
    def _train_source_model(self, folder: Path, settings: StageSettings) -> None:
        torch.manual_seed(stable_seed("source-training", self.config.seed) % 2**63)
        model = load_model(self.config.model, self.task)
        curve: list[dict] = []

        def on_evaluate(model: torch.nn.Module, epoch: int, step: int) -> float:
            scores = self.score(model, SOURCE_LANG, "dev")
            curve.append({"epoch": epoch, "step": step, **scores})
            return scores[self.task.metric]

        def restore_curve(extra: dict) -> None:
            curve[:] = extra["curve"]

        description = f"source-training {self.config.task}"
        checkpoint = EpochCheckpoint(folder.with_name(folder.name + ".checkpoint"), f"{folder.name} {description}",
                                     lambda: {"curve": curve}, restore_curve)
        outcome = train(model, self.features(SOURCE_LANG, "train"), settings, collator=self.collator,
                        seed=self.config.seed, device=self.device,
                        on_evaluate=on_evaluate if self.has_source_dev else None, select=self.config.selection,
                        description=description, progress=self.config.progress,
                        checkpoint=checkpoint if self.config.checkpoint_every_epoch else None)
        def fill(partial: Path) -> None:
            save_pretrained(partial, model, self.tokenizer)  # group-readable, for shared storage
            write_source_record(partial, {"selected_epoch": outcome.selected_epoch,
                                          "selected_step": outcome.selected_step, "steps": outcome.steps,
                                          "dev_curve": curve, "training_log": outcome.training_log,
                                          "trained_by": f"{socket.gethostname()}:{os.getpid()}"})

        replace_folder(folder, fill)
        checkpoint.remove()

    @timed("load model")
    def source_model(self) -> tuple[PreTrainedModel, TrainOutcome]:
        """A fresh copy of the source-trained model, and how it was selected (its dev curve becomes rows)."""
        folder = self.source_model_dir()
        record = read_source_record(folder)
        outcome = TrainOutcome(selected_epoch=record["selected_epoch"], steps=record["steps"],
                               selected_step=record["selected_step"])
        if not self._source_tracked:  # its training log joins the run's, once
            self._source_tracked = True
            for entry in record.get("training_log", []):
                self.on_log(entry)
            self.track(record.get("training_log", []))
        return load_model(folder, self.task), outcome

    def source_dev_rows(self) -> None:
        """The source-training dev curve (split=dev, lang=en), as recorded when the source model was trained."""
        record = read_source_record(self.source_model_dir())
        for point in record["dev_curve"]:
            self.rows += [Row(SOURCE_LANG, "dev", metric, value, point["epoch"], point["step"])
                          for metric, value in point.items() if metric not in ("epoch", "step")]

    @timed("train")
    def adapt(self, langs: list[str], *, select_on_dev: bool) -> tuple[PreTrainedModel, TrainOutcome]:
        """Target-adapting: fine-tune the source-trained model on the shots of `langs` (batch K, last checkpoint,
        or the best on the target dev set of the single language with `select_on_dev`)."""
        if select_on_dev and len(langs) != 1:
            raise ValueError("selection on a target dev set adapts one language at a time")
        model, _ = self.source_model()
        torch.manual_seed(stable_seed("adapt", self.config.seed, *langs) % 2**63)
        shots = concatenate_datasets([self.features(lang, "shots") for lang in langs])
        dev_langs = langs if select_on_dev else []  # ord-FS and co-FT never look at a dev set
        name = "" if langs == self.targets else "+".join(langs)  # ord-FS: a model per target, model/<lang>
        # no epoch checkpoints: a K-shot stage takes minutes at most
        outcome = train(model, shots, self.settings(adapting=True), collator=self.collator, seed=self.config.seed,
                        device=self.device, on_evaluate=self.curves(dev_langs, langs[0] if select_on_dev else None),
                        select="best" if select_on_dev else "last",
                        description=f"adapting to {'+'.join(langs)}", progress=self.config.progress,
                        on_log=self.on_log, on_final_weights=self.model_keeper("last", name))
        self.keep_model(model, "best", name)
        self.track(outcome.training_log)
        return model, outcome

    @timed("train")
    def co_train(self, *, surgery: bool) -> tuple[PreTrainedModel, TrainOutcome]:
        """One step: train the pre-trained model on the source train set and the shots of every target, shuffled
        together; the best checkpoint on the source dev set is kept (or the last, with `selection: last`)."""
        c = self.config
        torch.manual_seed(stable_seed("co-train", c.seed) % 2**63)
        model = load_model(c.model, self.task)
        data = concatenate_datasets([self.features(SOURCE_LANG, "train")] +
                                    [self.features(lang, "shots") for lang in self.targets])
        dev_langs = [SOURCE_LANG] * self.has_source_dev + (self.curve_langs(self.targets) if c.target_dev_curves
                                                           else [])
        description = f"{'gradient' if surgery else 'naive'}-co-training {c.task}"
        outcome = train(model, data, self.settings(adapting=False), collator=self.collator, seed=c.seed,
                        device=self.device, on_evaluate=self.curves(dev_langs, SOURCE_LANG if self.has_source_dev
                                                                    else None), select=c.selection,
                        surgery=self.surgeon_factory(model) if surgery else None,
                        surgery_granularity=c.surgery_granularity, description=description, progress=c.progress,
                        on_log=self.on_log, checkpoint=self.run_checkpoint(description),
                        on_final_weights=self.model_keeper("last"))
        self.keep_model(model, "best")
        self.track(outcome.training_log)
        if outcome.surgery_log:
            self.tables["surgery"] = pd.DataFrame(outcome.surgery_log)
        return model, outcome

    def oracle_batches(self):
        """`oracle(lang)` -> a collated oracle batch, of the size fslib.core.surgeons.oracle_batch_size gives."""
        c = self.config
        generator = torch.Generator().manual_seed(stable_seed("oracle-batches", c.seed) % 2**63)
        self._oracle_generator = generator  # part of a co-training checkpoint
        fixed: dict[str, dict] = {}

        def random_batch(features: Dataset, size: int) -> dict:
            chosen = torch.randperm(len(features), generator=generator)[:size].tolist()
            return self.collator(features.select(chosen).to_list())

        def oracle(lang: str) -> dict:
            if lang == SOURCE_LANG:
                return random_batch(self.features(SOURCE_LANG, "train"), oracle_batch_size(c, lang, 0))
            shots = self.features(lang, "shots")
            size = oracle_batch_size(c, lang, len(shots))
            if size is not None:
                return random_batch(shots, size)
            if lang not in fixed:
                fixed[lang] = self.collator(shots.to_list())
            return dict(fixed[lang])
        return oracle

    def surgeon_factory(self, model: torch.nn.Module):
        """A function that builds each step's surgeon from that step's per-language gradients; the oracle losses
        are `model`'s on the oracle batches."""
        c = self.config
        languages = list(self.targets) + ([SOURCE_LANG] if c.oracle_include_source else [])
        oracle = self.oracle_batches()

        def oracle_loss(lang: str) -> torch.Tensor:
            inputs, _ = to_device(oracle(lang), self.device)
            with autocast(self.device, c.precision):
                return model(**inputs).loss

        def batch_loss(batch: dict) -> torch.Tensor:
            inputs, _ = to_device(dict(batch), self.device)
            with autocast(self.device, c.precision):
                return model(**inputs).loss

        surgeon_class, options = get_surgeon(c.surgeon), surgeon_kwargs(c.surgeon, c.surgeon_args)

        def surgeon(grads: FlatGradients) -> Surgeon:
            seed = stable_seed("surgery", c.seed)
            if c.cuda_graphs and capturable(self.device, c.precision):
                return surgeon_class(grads, languages, c.alpha, seed, batch_loss=batch_loss,
                                     oracle_pass=oracle_pass(model, grads, c.precision, oracle), **options)
            return surgeon_class(grads, languages, c.alpha, seed, oracle_loss, batch_loss=batch_loss, **options)
        return surgeon

