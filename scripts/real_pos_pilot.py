"""The real-POS pilot (issue 25): what the grid's design needs, measured on this machine.

Stages (each writes rows to results/real-pos/pilot/*.csv, appending, so the pilot resumes stage by stage):
  source   English source-model test F1 vs English train sentences and epochs (dev F1 per epoch), the English
           sample drawn per seed, and each run's wall time;
  methods  per-run cost of each method at the candidate size (timings.json phases);
  adapt    target-adapting learning rate and epochs chosen on the targets' dev sets (ord-FS+dev curves);
  variance gradient-co-train and naive-co-train at K=5 over a few seeds, test sets >= 1000 words per target.

Assumes the encoder at outputs/models/multilingual-e5-small (fslib.prepare.offline_encoder.prepare_encoder) and the
UD folder ../shared/data/ud. The English sample per seed is drawn here by shuffling EWT's carved train split with a
seed-derived generator before the cap (what issue 26 makes `max_train_examples` do); the engine is not edited.
Run with OMP_NUM_THREADS=1: `python scripts/real_pos_pilot.py STAGE [options]`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

import fslib.engine.stages as stages
from fslib.core.languages import SOURCE_LANG
from fslib.formats.seeds import stable_seed
from fslib.store.config import RunConfig, run_dir

OUT = Path("results/real-pos/pilot")
TARGETS = ["de", "fr", "fi", "tr", "pl", "id", "ru", "ar", "hi", "ja", "zh", "ko", "th"]
BASE = dict(task="pos", model="outputs/models/multilingual-e5-small", source="ud", data_dir="../shared/data/ud",
            warmup_ratio=0.1, train_batch_size=8, max_length=64, eval_batch_size=32, curve_langs=[],
            progress=False)

_load_split = stages.load_split


def seeded_english_sample(task, lang, split, **kwargs):
    """EWT's train split shuffled by the run's seed, so that the engine's cap takes a different sample per seed."""
    data = _load_split(task, lang, split, **kwargs)
    if lang == SOURCE_LANG and split == "train":
        data = data.shuffle(seed=stable_seed("english-sample", kwargs.get("seed")) % 2**32)
    return data


stages.load_split = seeded_english_sample


def load() -> float:
    return os.getloadavg()[0]


def run(config: RunConfig) -> tuple[pd.DataFrame, dict, float, float]:
    from fslib.engine.runner import run_experiment

    started, cpu, before = time.perf_counter(), time.process_time(), load()
    frame = run_experiment(config)
    timings = json.loads((run_dir(config) / "timings.json").read_text())
    timings["cpu_s"] = round(time.process_time() - cpu, 1)  # this process's CPU time: what an idle core would take
    return frame, timings, time.perf_counter() - started, (before + load()) / 2


def append(name: str, rows: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.csv"
    frame = pd.DataFrame(rows)
    frame.to_csv(path, mode="a", header=not path.exists(), index=False)
    print(frame.to_string(index=False))


def stage_source(args) -> None:
    """zero-shot runs: English dev F1 per epoch, English and target test F1, wall time."""
    for n in args.sizes:
        for seed in args.seeds:
            config = RunConfig(**BASE, method="zero-shot", k=0, seed=seed, languages=[SOURCE_LANG] + args.langs,
                               learning_rate=args.lr, epochs=args.epochs, max_train_examples=n,
                               max_eval_examples=args.eval, output_dir=f"outputs/pilot/source-lr{args.lr}")
            frame, timings, wall, mean_load = run(config)
            dev = frame[(frame["split"] == "dev") & (frame["metric"] == "f1")].sort_values("epoch")
            test = frame[(frame["split"] == "test") & (frame["metric"] == "f1")].set_index("lang")["value"]
            append("source", [{"n_train": n, "epochs": args.epochs, "lr": args.lr, "seed": seed,
                               "en_test_f1": test.get(SOURCE_LANG),
                               "target_test_f1": test.drop(SOURCE_LANG, errors="ignore").mean(),
                               "selected_epoch": frame[frame["split"] == "test"]["epoch"].iloc[0],
                               "dev_f1_by_epoch": " ".join(f"{v:.1f}" for v in dev["value"]),
                               "wall_s": round(wall, 1), "train_s": timings.get("train"),
                               "evaluate_s": timings.get("evaluate"), "cpu_s": timings["cpu_s"],
                               "load": round(mean_load, 2),
                               "threads": os.environ.get("OMP_NUM_THREADS")}])


def stage_runs(args) -> None:
    """Runs of `--methods` at each K of `--k` and seed of `--seeds`: their rows stay in the run folders (for the
    variance components), their wall time and phases go to runs.csv."""
    for seed in args.seeds:
        for k in args.k:
            for method in args.methods:
                config = RunConfig(**BASE, method=method, k=0 if method == "zero-shot" else k, seed=seed,
                                   languages=[SOURCE_LANG] + args.langs, learning_rate=args.lr, epochs=args.epochs,
                                   target_epochs=args.target_epochs, max_train_examples=args.sizes[0],
                                   max_eval_examples=args.eval, output_dir=args.output)
                frame, timings, wall, mean_load = run(config)
                test = frame[(frame["split"] == "test") & (frame["metric"] == "f1")].set_index("lang")["value"]
                append("runs", [{"method": method, "k": config.k, "seed": seed, "n_train": args.sizes[0],
                                 "epochs": args.epochs, "target_epochs": args.target_epochs, "lr": args.lr,
                                 "eval": args.eval, "en_test_f1": test.get(SOURCE_LANG),
                                 "target_test_f1": test.drop(SOURCE_LANG, errors="ignore").mean(),
                                 "wall_s": round(wall, 1), "run_experiment_s": timings["run_experiment"],
                                 "cpu_s": timings["cpu_s"],
                                 "load": round(mean_load, 2), "threads": os.environ.get("OMP_NUM_THREADS")}])


def stage_passes(args) -> None:
    """Per-pass times of the encoder on this CPU (fslib.batch.cost's Shape): forward+backward at batch 8 and 5 of
    40-token sequences, the AdamW step, and a forward-only evaluation batch of 32, each the median CPU time of a few."""
    import statistics

    import torch

    from fslib.engine.models import load_model

    torch.manual_seed(0)
    model = load_model(BASE["model"], "pos")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    vocab = model.config.vocab_size

    def batch(n: int, length: int = 40) -> dict:
        return {"input_ids": torch.randint(5, vocab, (n, length)),
                "attention_mask": torch.ones(n, length, dtype=torch.long),
                "labels": torch.randint(0, model.config.num_labels, (n, length))}

    def median(work, repeats: int = args.repeats) -> float:
        work()
        times = []
        for _ in range(repeats):
            started = time.process_time()  # CPU time: what the pass takes on a core of its own
            work()
            times.append(time.process_time() - started)
        return statistics.median(times)

    def train_pass(n: int):
        inputs = batch(n)
        return lambda: model(**inputs).loss.backward()

    rows = []
    for n in (8, 5, 1):
        rows.append({"what": f"forward+backward, batch {n} x 40 tokens", "seconds": median(train_pass(n))})
    rows.append({"what": "AdamW step (all parameters)", "seconds": median(lambda: optimizer.step())})
    model.eval()
    for n in (32, 8):
        inputs = {key: value for key, value in batch(n).items() if key != "labels"}
        with torch.inference_mode():
            rows.append({"what": f"forward (inference mode), batch {n} x 40 tokens",
                         "seconds": median(lambda: model(**inputs))})
        with torch.no_grad():
            rows.append({"what": f"forward (no_grad), batch {n} x 40 tokens",
                         "seconds": median(lambda: model(**inputs))})
    append("passes", [{**row, "threads": torch.get_num_threads(), "load": round(load(), 2)} for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["source", "runs", "passes"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--eval", type=int, default=64)
    parser.add_argument("--k", type=int, nargs="+", default=[5])
    parser.add_argument("--methods", nargs="+", default=["naive-co-train", "gradient-co-train"])
    parser.add_argument("--target-epochs", type=int, default=3)
    parser.add_argument("--output", default="outputs/pilot/runs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--langs", nargs="+", default=TARGETS)
    args = parser.parse_args()
    {"source": stage_source, "runs": stage_runs, "passes": stage_passes}[args.stage](args)


if __name__ == "__main__":
    main()
