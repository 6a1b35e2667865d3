"""Models: loading any `AutoModel` checkpoint with the task's head (the offline benchmark's tiny XLM-R is built in
fslib.prepare.mini.model)."""

from __future__ import annotations

from pathlib import Path

from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PreTrainedModel,
)
from transformers.utils import logging as hf_logging

from fslib.core.tasks import Task, get_task
from fslib.prepare.offline_encoder import build_offline_encoder  # noqa: F401  (re-exported: fslib.engine.models.build_offline_encoder)


def load_model(name_or_path: str | Path, task: str | Task) -> PreTrainedModel:
    """A pre-trained checkpoint with the task's head: token classification (NER, POS), span start/end (TyDiQA),
    or a classifier on the first token (XNLI)."""
    spec = get_task(task) if isinstance(task, str) else task
    labels = {"id2label": dict(enumerate(spec.labels)), "label2id": {label: i for i, label in enumerate(spec.labels)},
              "num_labels": len(spec.labels)}
    auto, kwargs = {"qa": (AutoModelForQuestionAnswering, {}), "tagging": (AutoModelForTokenClassification, labels),
                    "classification": (AutoModelForSequenceClassification, labels)}[spec.kind]
    # Loading a pre-trained encoder under a new head always reports the same thing (new head, unused LM head),
    # once per ord-FS language: keep the logs for real problems.
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return auto.from_pretrained(name_or_path, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
