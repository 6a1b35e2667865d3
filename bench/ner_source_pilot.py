"""Pilot for params/real/ner.yaml: English source-model F1 on UNER EWT test against training sentences, epochs
and learning rate, with the real encoder (multilingual-e5-small, vocabulary trimmed to the UNER sentences).

Single-threaded (the machine is shared). Each setting is one zero-shot run on English only; its source model is
trained on the first `max_train_examples` of EWT's carved train split, the best epoch on EWT dev is kept, and
the score is F1 on all 2,077 sentences of EWT test. Appends one line per setting to results/real-ner/pilot.md.

    PYTHONPATH=. python bench/ner_source_pilot.py N EPOCHS LR [N EPOCHS LR ...]
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from fslib.engine.runner import run_experiment  # noqa: E402
from fslib.formats.uner import default_uner_dir  # noqa: E402
from fslib.prepare.offline_encoder import prepare_encoder  # noqa: E402
from fslib.store.config import RunConfig  # noqa: E402

LANGUAGES = ["en", "de", "pt", "ru", "zh", "sv", "da", "hr", "sk", "sr"]
ROOT = Path(__file__).resolve().parent.parent


def main(args: list[str]) -> None:
    torch.set_num_threads(1)
    encoder = ROOT / "outputs" / "models" / "multilingual-e5-small-uner"
    prepare_encoder(encoder, default_uner_dir(), LANGUAGES, source="uner")
    out = ROOT / "results" / "real-ner" / "pilot.md"
    for n, epochs, lr in zip(args[0::3], args[1::3], args[2::3]):
        config = RunConfig(task="ner", method="zero-shot", k=0, seed=1, model=str(encoder), source="uner",
                           data_dir=str(default_uner_dir()), languages=["en"],
                           output_dir=str(ROOT / "outputs" / "ner-pilot"), epochs=int(epochs),
                           learning_rate=float(lr), warmup_ratio=0.1, train_batch_size=8, max_length=64,
                           max_train_examples=int(n), max_eval_examples=None, eval_batch_size=32, progress=False)
        start = time.time()
        rows = run_experiment(config)
        wall = time.time() - start
        f1 = rows[(rows["split"] == "test") & (rows["metric"] == "f1")]["value"].iloc[0]
        line = f"| {n} | {epochs} | {lr} | 8 | {wall:.0f} | {f1:.1f} |"
        print(line, flush=True)
        with open(out, "a") as file:
            file.write(line + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
