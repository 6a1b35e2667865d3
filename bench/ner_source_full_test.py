"""The English source models of a real-NER grid scored on all of UNER's EWT test (2,077 sentences), where the grid
itself scores English on its first `max_eval_examples` sentences only. One line per source model; the source
models are the grid's own folders (`<output_dir>/source_models/ner-seed*`), read, not changed.

    PYTHONPATH=. python bench/ner_source_full_test.py outputs/real-ner/source_models/ner-seed1-* [...]
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from transformers import AutoModelForTokenClassification  # noqa: E402

from fslib.engine.stages import Experiment  # noqa: E402
from fslib.formats.uner import default_uner_dir  # noqa: E402
from fslib.store.config import RunConfig  # noqa: E402


def main(folders: list[str]) -> None:
    torch.set_num_threads(1)
    print("| source model | EWT test sentences | F1 |\n|---|---|---|")
    for folder in map(Path, folders):
        config = RunConfig(task="ner", method="zero-shot", k=0, seed=1, model=str(folder), source="uner",
                           data_dir=str(default_uner_dir()), languages=["en"], max_length=64,
                           max_eval_examples=None, eval_batch_size=32, progress=False)
        experiment = Experiment(config)
        model = AutoModelForTokenClassification.from_pretrained(folder).to(experiment.device).eval()
        scores = experiment.score(model, "en", "test")
        print(f"| {folder.name} | {len(experiment.examples('en', 'test'))} | {scores['f1']:.1f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
