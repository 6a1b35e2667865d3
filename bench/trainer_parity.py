#!/usr/bin/env python
"""Is the kit's training loop and evaluation as fast as the tool a user would otherwise pick, transformers.Trainer?

The same naive co-training through both: the same model (the tiny XLM-R of `make demo`, or any local folder with
--model), the same data (POS of the offline benchmark: capped English train + K shots of each target, tokenised
once by `fslib.engine.features.build_features`), batch size, maximum length, AdamW (lr, eps, no weight decay, clipping at
1.0), linear schedule without warm-up, length-grouped batches, the same number of epochs and steps:

- `fslib`:   `fslib.engine.training.train(...)` with no evaluation callback;
- `hf`:      `transformers.Trainer(...).train()` with `train_sampling_strategy="group_by_length"`, no logging, no
             checkpoints, no evaluation, `DataCollatorForTokenClassification`.

Evaluation on the same dev sets (every language's, one call per language, as a run scores them): `fslib.engine.evaluation
.evaluate` (predictions and the task's F1) against `Trainer.evaluate` with a `compute_metrics` that gives the same
F1 (seqeval on first sub-words), at the same batch size.

Each repetition builds both from the same initial weights and times them in turn (the order alternating), wall
time and process CPU time; the headline is the median over repetitions. Ratios are fslib over Trainer in
throughput: > 1 means the kit is faster.

    .venv/bin/python bench/trainer_parity.py [--threads 1] [--repeats 5] [--epochs 2]
Writes bench/results/trainer_parity-<cpu|cuda>.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import concatenate_datasets  # noqa: E402
from transformers import AutoTokenizer, DataCollatorForTokenClassification, Trainer, TrainingArguments  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from surgery_overhead import machine_info, write_json  # noqa: E402

from fslib.core.languages import MINI_LANGUAGES, SOURCE_LANG  # noqa: E402
from fslib.core.tasks import get_task  # noqa: E402
from fslib.data import load_shots, load_split  # noqa: E402
from fslib.engine.evaluation import evaluate  # noqa: E402
from fslib.engine.features import IGNORE, MODEL_INPUTS, Collator, build_features  # noqa: E402
from fslib.engine.metrics import tagging_f1  # noqa: E402
from fslib.engine.models import load_model  # noqa: E402
from fslib.engine.training import StageSettings, train  # noqa: E402
from fslib.prepare.mini.model import prepare_offline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def load_data(data_dir: Path, tokenizer, task, k: int, train_cap: int, eval_cap: int, max_length: int):
    """(co-training features, {lang: (dev examples, dev features)})."""
    train_examples = load_split(task.name, SOURCE_LANG, "train", source="xtreme", data_dir=data_dir)
    train_examples = train_examples.select(range(min(train_cap, len(train_examples))))
    parts = [build_features(train_examples, task, tokenizer, max_length)]
    for lang in MINI_LANGUAGES:
        parts.append(build_features(load_shots(task.name, lang, k, 1, source="xtreme", data_dir=data_dir), task,
                                    tokenizer, max_length))
    dev = {}
    for lang in (SOURCE_LANG, *MINI_LANGUAGES):
        examples = load_split(task.name, lang, "dev", source="xtreme", data_dir=data_dir, k=k, seed=1)
        examples = examples.select(range(min(eval_cap, len(examples))))
        dev[lang] = (examples, build_features(examples, task, tokenizer, max_length))
    return concatenate_datasets(parts), dev


def hf_compute_metrics(task):
    """The tagging F1 from Trainer's predictions: the label of every position that carries one (first sub-words),
    the same word-level sequences as fslib's scoring when no sentence was split into segments."""
    def compute(prediction) -> dict:
        predicted, labels = prediction.predictions.argmax(-1), prediction.label_ids
        gold, guess = [], []
        for row_pred, row_gold in zip(predicted, labels):
            keep = row_gold != IGNORE
            gold.append([task.labels[i] for i in row_gold[keep]])
            guess.append([task.labels[i] for i in row_pred[keep]])
        return {task.metric: tagging_f1(gold, guess)}
    return compute


def hf_args(out: Path, settings: StageSettings, eval_batch: int, seed: int, device: torch.device) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=eval_batch,
        num_train_epochs=settings.epochs, learning_rate=settings.learning_rate, lr_scheduler_type="linear",
        warmup_steps=0, weight_decay=settings.weight_decay, adam_epsilon=settings.adam_epsilon,
        max_grad_norm=settings.max_grad_norm, optim="adamw_torch", train_sampling_strategy="group_by_length",
        logging_strategy="no", save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, seed=seed, use_cpu=device.type == "cpu",
        bf16=settings.precision == "bf16" and device.type == "cuda")


def timed(function):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--data-dir", default=str(ROOT / "outputs" / "data" / "mini"))
    parser.add_argument("--model", default=str(ROOT / "outputs" / "models" / "tiny-xlmr"))
    parser.add_argument("--task", default="pos", choices=("ner", "pos"))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--train-examples", type=int, default=1000, help="English training sentences (cap)")
    parser.add_argument("--eval-examples", type=int, default=400, help="dev sentences per language (cap)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup-runs", type=int, default=1,
                        help="untimed runs of both first (CUDA context, cuBLAS and kernel caches)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    load_before = os.getloadavg()
    data_dir, model_dir = Path(args.data_dir), Path(args.model)
    if model_dir.name == "tiny-xlmr":
        prepare_offline(data_dir, model_dir)
    task = get_task(args.task)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    features, dev = load_data(data_dir, tokenizer, task, args.k, args.train_examples, args.eval_examples,
                              args.max_length)
    settings = StageSettings(epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3, precision="bf16")
    collator = Collator(task, tokenizer)
    hf_collator = DataCollatorForTokenClassification(tokenizer)
    hf_train = features.select_columns([c for c in MODEL_INPUTS if c in features.column_names])
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "fslib-trainer-parity"

    torch.manual_seed(0)
    initial = {name: t.clone() for name, t in load_model(model_dir, task).state_dict().items()}

    def fresh_model():
        model = load_model(model_dir, task)
        model.load_state_dict(initial)
        return model

    runs = {"fslib": [], "hf_trainer": [], "fslib_eval": [], "hf_trainer_eval": []}
    steps = {}
    scores = {}
    for repeat in range(-args.warmup_runs, args.repeats):
        order = ("fslib", "hf_trainer") if repeat % 2 == 0 else ("hf_trainer", "fslib")
        for name in order:
            gc.collect()
            model = fresh_model()
            if name == "fslib":
                outcome, wall, cpu = timed(lambda: train(model, features, settings, collator=collator, seed=repeat % 1000,
                                                         device=device, progress=False))
                steps[name] = outcome.steps
                evaluation, eval_wall, eval_cpu = timed(lambda: {
                    lang: evaluate(model, task, examples, feats, collator, args.eval_batch_size, device,
                                   progress=False)[task.metric] for lang, (examples, feats) in dev.items()})
            else:
                trainer = Trainer(model=model, args=hf_args(scratch, settings, args.eval_batch_size, repeat % 1000, device),
                                  train_dataset=hf_train, data_collator=hf_collator,
                                  compute_metrics=hf_compute_metrics(task))
                output, wall, cpu = timed(trainer.train)
                steps[name] = output.global_step
                evaluation, eval_wall, eval_cpu = timed(lambda: {
                    lang: trainer.evaluate(feats.select_columns([c for c in MODEL_INPUTS if c in feats.column_names]))
                    [f"eval_{task.metric}"] for lang, (examples, feats) in dev.items()})
            if repeat < 0:  # warm-up
                print(f"warm-up {name}: train {wall:6.2f} s, evaluate {eval_wall:6.2f} s", flush=True)
                del model
                continue
            runs[name].append({"wall_s": wall, "cpu_s": cpu, "steps_per_s": steps[name] / wall})
            eval_features = sum(len(feats) for _, feats in dev.values())
            runs[f"{name}_eval"].append(
                {"wall_s": eval_wall, "cpu_s": eval_cpu, "features_per_s": eval_features / eval_wall})
            scores[name] = evaluation
            print(f"repeat {repeat + 1}/{args.repeats} {name:<10} train {wall:6.2f} s ({steps[name]} steps), "
                  f"evaluate {eval_wall:6.2f} s", flush=True)
            del model
    if steps["fslib"] != steps["hf_trainer"]:
        print(f"warning: step counts differ: {steps}")

    summary = {name: {"median_wall_s": statistics.median(r["wall_s"] for r in values),
                      "median_cpu_s": statistics.median(r["cpu_s"] for r in values),
                      "min_wall_s": min(r["wall_s"] for r in values)} for name, values in runs.items()}
    for name in ("fslib", "hf_trainer"):
        summary[name]["steps"] = steps[name]
        summary[name]["steps_per_s"] = steps[name] / summary[name]["median_wall_s"]
    eval_features = sum(len(feats) for _, feats in dev.values())
    for name in ("fslib_eval", "hf_trainer_eval"):
        summary[name]["features"] = eval_features
        summary[name]["features_per_s"] = eval_features / summary[name]["median_wall_s"]
    ratios = {  # throughput of the kit over the Trainer's: > 1 = the kit is faster
        "fslib/hf_trainer": summary["hf_trainer"]["median_wall_s"] / summary["fslib"]["median_wall_s"],
        "fslib_eval/hf_trainer_eval": summary["hf_trainer_eval"]["median_wall_s"] / summary["fslib_eval"]["median_wall_s"],
        "fslib/hf_trainer (cpu time)": summary["hf_trainer"]["median_cpu_s"] / summary["fslib"]["median_cpu_s"],
        "fslib_eval/hf_trainer_eval (cpu time)": summary["hf_trainer_eval"]["median_cpu_s"] /
        summary["fslib_eval"]["median_cpu_s"],
    }
    lengths = [len(ids) for ids in features["input_ids"]]
    payload = {
        "benchmark": "trainer_parity",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine_info(device), "datasets": datasets.__version__, "load_average_at_start": list(load_before),
                    "accelerate": __import__("accelerate").__version__},
        "config": {"task": args.task, "model": str(model_dir), "parameters": sum(t.numel() for t in initial.values()),
                   "train_features": len(features), "k": args.k, "targets": list(MINI_LANGUAGES),
                   "mean_length": float(np.mean(lengths)), "epochs": args.epochs, "batch_size": args.batch_size,
                   "eval_batch_size": args.eval_batch_size, "max_length": args.max_length, "learning_rate": 1e-3,
                   "optimizer": "AdamW (torch), eps 1e-8, weight decay 0, clip 1.0, linear schedule, no warm-up",
                   "sampler": "length-grouped (fslib.engine.training.batches / Trainer group_by_length)",
                   "dev_sets": {lang: len(feats) for lang, (_, feats) in dev.items()}, "repeats": args.repeats,
                   "warmup_runs": args.warmup_runs},
        "summary": summary, "ratios": ratios, "runs": runs,
        "dev_scores": scores,
        "goal": "ratios fslib/hf_trainer and fslib_eval/hf_trainer_eval >= 1.0",
    }
    out = Path(args.out or ROOT / "bench" / "results" / f"trainer_parity-{device.type}.json")
    write_json(out, payload)
    for name, values in summary.items():
        print(f"{name:<16} median {values['median_wall_s']:7.3f} s wall, {values['median_cpu_s']:7.3f} s cpu")
    for name, value in ratios.items():
        print(f"{name:<40} {value:.3f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
