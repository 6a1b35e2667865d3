"""Evaluation: predictions in length-sorted batches, mapped back to examples and scored with the task metric."""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset

from fslib.features import Collator, qa_predictions, tagging_predictions
from fslib.metrics import accuracy, squad_f1_em, tagging_f1
from fslib.progress import tqdm
from fslib.tasks import Task
from fslib.training import autocast, to_device


@torch.no_grad()
def predict(model: torch.nn.Module, features: Dataset, collator: Collator, batch_size: int, device: torch.device,
            precision: str = "bf16", description: str = "evaluating", progress: bool = True) -> list:
    """Per feature: predicted label ids (tagging: one per position; classification: one), or a pair of
    (start, end) logit arrays (qa). Features are batched by length, then put back in order."""
    model.to(device).eval()
    order = np.argsort([len(ids) for ids in features["input_ids"]], kind="stable")
    outputs: list = [None] * len(order)
    for start in tqdm(range(0, len(order), batch_size), desc=description, disable=not progress, leave=False):
        chunk = order[start:start + batch_size].tolist()
        inputs, _ = to_device(collator(features.select(chunk).to_list()), device)
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        inputs = {key: inputs[key] for key in ("input_ids", "attention_mask")}
        with autocast(device, precision):
            result = model(**inputs)
        if hasattr(result, "start_logits"):
            starts, ends = result.start_logits.float().cpu().numpy(), result.end_logits.float().cpu().numpy()
            values = [(s[:n], e[:n]) for s, e, n in zip(starts, ends, lengths)]
        elif result.logits.dim() == 3:
            ids = result.logits.argmax(-1).cpu().tolist()
            values = [row[:n] for row, n in zip(ids, lengths)]
        else:
            values = result.logits.argmax(-1).cpu().tolist()
        for index, value in zip(chunk, values):
            outputs[index] = value
    return outputs


def score(task: Task, examples: Dataset, features: Dataset, outputs: list) -> dict[str, float]:
    """The task's metrics (0-100) of one language's predictions."""
    if task.kind == "tagging":
        predicted = tagging_predictions(features, outputs, examples, task.labels, fallback=task.labels[0])
        return {task.metric: tagging_f1(examples["tags"], predicted)}
    if task.kind == "qa":
        answers = qa_predictions(features, [s for s, _ in outputs], [e for _, e in outputs], examples)
        return squad_f1_em(answers, [a["text"] for a in examples["answers"]])
    return {task.metric: accuracy(examples["label"], [task.labels[i] for i in outputs])}


def evaluate(model: torch.nn.Module, task: Task, examples: Dataset, features: Dataset, collator: Collator,
             batch_size: int, device: torch.device, precision: str = "bf16", description: str = "evaluating",
             progress: bool = True) -> dict[str, float]:
    outputs = predict(model, features, collator, batch_size, device, precision, description, progress)
    return score(task, examples, features, outputs)
