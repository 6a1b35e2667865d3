"""Evaluation: predictions in length-sorted batches, mapped back to examples and scored with the task metric."""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset

from fslib.core.progress import tqdm
from fslib.core.tasks import Task
from fslib.engine.features import Collator, column, input_lengths, qa_predictions, tagging_predictions
from fslib.engine.metrics import TOKEN_ACCURACY, accuracy, squad_f1_em, tagging_f1, token_accuracy
from fslib.engine.training import autocast, to_device


@torch.no_grad()
def predict(model: torch.nn.Module, features: Dataset, collator: Collator, batch_size: int, device: torch.device,
            precision: str = "bf16", description: str = "evaluating", progress: bool = True) -> list:
    """Per feature: predicted label ids (tagging: one per position; classification: one), or a pair of
    (start, end) logit arrays (qa). Features are batched by length, then put back in order."""
    model.to(device).eval()
    order = np.argsort(input_lengths(features), kind="stable")
    outputs: list = [None] * len(order)
    columns = features.select_columns([name for name in ("input_ids", "attention_mask", "lang")
                                       if name in features.column_names])
    for start in tqdm(range(0, len(order), batch_size), desc=description, disable=not progress, leave=False):
        chunk = order[start:start + batch_size].tolist()
        rows = columns[chunk]  # one read of the batch's rows, as lists per column
        inputs, _ = to_device(collator([dict(zip(rows, values)) for values in zip(*rows.values())]), device)
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


def decode(task: Task, examples: Dataset, features: Dataset, outputs: list) -> list:
    """Per example, what the model predicts: a tag sequence (tagging), an answer text (qa) or a label name."""
    if task.kind == "tagging":
        return tagging_predictions(features, outputs, examples, task.labels, fallback=task.labels[0])
    if task.kind == "qa":
        return qa_predictions(features, [s for s, _ in outputs], [e for _, e in outputs], examples)
    return [task.labels[i] for i in outputs]


def score(task: Task, examples: Dataset, predicted: list) -> dict[str, float]:
    """The task's metrics (0-100) of one language's decoded predictions."""
    if task.kind == "tagging":
        gold = column(examples, "tags")
        extra = {TOKEN_ACCURACY: token_accuracy(gold, predicted)} if task.name == "pos" else {}  # a second row
        return {task.metric: tagging_f1(gold, predicted), **extra}
    if task.kind == "qa":
        return squad_f1_em(predicted, [a["text"] for a in column(examples, "answers")])
    return {task.metric: accuracy(column(examples, "label"), predicted)}


def prediction_records(task: Task, examples: Dataset, predicted: list) -> list[dict]:
    """Gold and predicted side by side, one dict per example: what the task notebooks' views read
    (fslib.analysis.task_views)."""
    columns = {"tagging": ["lang", "tokens", "tags"], "qa": ["lang", "id", "question", "answers"],
               "classification": ["lang", "label"]}[task.kind]
    values = examples.select_columns(columns).to_dict()  # one conversion, not one per row
    if task.kind == "tagging":
        return [{"lang": lang, "tokens": tokens, "gold": gold, "pred": pred}
                for lang, tokens, gold, pred in zip(values["lang"], values["tokens"], values["tags"], predicted)]
    if task.kind == "qa":
        return [{"lang": lang, "id": id_, "question": question, "gold": answers["text"], "pred": pred}
                for lang, id_, question, answers, pred in zip(values["lang"], values["id"], values["question"],
                                                             values["answers"], predicted)]
    return [{"lang": lang, "gold": gold, "pred": pred} for lang, gold, pred in zip(values["lang"], values["label"],
                                                                                 predicted)]


def evaluate(model: torch.nn.Module, task: Task, examples: Dataset, features: Dataset, collator: Collator,
             batch_size: int, device: torch.device, precision: str = "bf16", description: str = "evaluating",
             progress: bool = True, keep: list[dict] | None = None) -> dict[str, float]:
    """The task's metrics of `model` on one language's examples; with `keep`, the predictions are appended to it
    (see prediction_records)."""
    outputs = predict(model, features, collator, batch_size, device, precision, description, progress)
    predicted = decode(task, examples, features, outputs)
    if keep is not None:
        keep.extend(prediction_records(task, examples, predicted))
    return score(task, examples, predicted)
