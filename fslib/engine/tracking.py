"""Following training: the training log and, optionally, TensorBoard.

`fslib.engine.training.train` records the mean training loss and the learning rate every `LOG_EVERY` optimiser
steps (kind "interval", the last interval of an epoch possibly shorter) and per epoch (kind "epoch"); a run writes
them to `training.csv` in its folder (columns `TRAINING_COLUMNS`; `stage` tells source-training, adapting to a
language and co-training apart); its task notebook plots them, also into `training_loss.png`. With
`tensorboard: true` in the run config, the same numbers, the dev curves and
the surgery statistics also go to TensorBoard event files in the run's `tensorboard/` folder, written while the
run trains (`tensorboard --logdir outputs/runs` shows every run). TensorBoard is an optional extra:
`pip install "fslib[tensorboard]"`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

LOG_EVERY = 10  # optimiser steps per logged training-loss interval
TRAINING_FILE = "training.csv"
LOSS_FIGURE = "training_loss.png"  # the run's loss curves, saved by its task notebook
TRAINING_COLUMNS = ["stage", "kind", "epoch", "step", "loss", "learning_rate"]
TENSORBOARD_DIR = "tensorboard"


def tag(text: str) -> str:
    """A TensorBoard tag part: `adapting to qa+qb` -> `adapting_to_qa+qb`."""
    return re.sub(r"[^\w.+-]+", "_", text).strip("_")


class TensorBoardLog:
    """Scalars of one run into `folder` (replaced: a rerun starts a fresh log). Tags: `<stage>/loss` (per
    interval), `<stage>/epoch_loss`, `<stage>/learning_rate`, `<stage>/surgery/<statistic>` (per epoch),
    against the optimiser step; `dev/<lang>/<metric>` and `test-curve/<lang>/<metric>` against the epoch."""

    def __init__(self, folder: Path | str):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError("tensorboard: true needs the tensorboard package: pip install 'fslib[tensorboard]' "
                              "(or pip install tensorboard)") from error
        shutil.rmtree(folder, ignore_errors=True)
        self.folder = Path(folder)
        self.writer = SummaryWriter(log_dir=str(folder))

    def __call__(self, entry: dict) -> None:
        """One entry of `train`'s log: a training-log row (kind interval or epoch) or surgery statistics."""
        stage = tag(entry["stage"])
        step = int(entry["step"])
        if entry["kind"] == "interval":
            self.writer.add_scalar(f"{stage}/loss", entry["loss"], step)
            self.writer.add_scalar(f"{stage}/learning_rate", entry["learning_rate"], step)
        elif entry["kind"] == "epoch":
            self.writer.add_scalar(f"{stage}/epoch_loss", entry["loss"], step)
        elif entry["kind"] == "surgery":
            for name, value in entry.items():
                if name not in ("stage", "kind", "epoch", "step"):
                    self.writer.add_scalar(f"{stage}/surgery/{name}", value, step)

    def scores(self, split: str, lang: str, metrics: dict[str, float], epoch: int) -> None:
        for metric, value in metrics.items():
            self.writer.add_scalar(f"{split}/{lang}/{metric}", value, epoch)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
