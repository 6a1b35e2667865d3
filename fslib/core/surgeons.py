"""The gradient surgeons by name, and where the surgery happens in a step. Plain data, so that a run's
configuration checks its `surgeon` and `surgery_granularity` without importing torch; the engine imports the
class (fslib.engine.surgery.get_surgeon).

A surgeon is a registered name, or "package.module:Class" for one defined outside the kit (a `Surgeon`
subclass importable wherever the run executes)."""

from __future__ import annotations

import re

from fslib.core.languages import SOURCE_LANG
from fslib.core.tasks import get_task

DEFAULT_SURGEON = "stochastic"
SURGEONS: dict[str, str] = {
    "stochastic": "fslib.engine.surgeons.stochastic:StochasticGradientSurgery",  # the paper's Algorithm 1
}
# "step": once per optimiser step, on the accumulated gradient; "micro_batch": after every micro-batch (the
# authors' code)
GRANULARITIES = ("step", "micro_batch")
IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def surgeon_path(name: str) -> str:
    """The "module:Class" of surgeon `name`; an unknown name is an error naming the valid ones."""
    if name in SURGEONS:
        return SURGEONS[name]
    if isinstance(name, str) and IMPORT_PATH.match(name):
        return name
    raise ValueError(f"unknown surgeon {name!r}; valid surgeons: {', '.join(SURGEONS)}, or 'package.module:Class' "
                     "of a fslib.engine.surgery.Surgeon subclass")


def check_granularity(granularity: str) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown surgery_granularity {granularity!r}; valid: {', '.join(GRANULARITIES)}")


def oracle_batch_size(config, lang: str, shots: int) -> int | None:
    """Examples in one oracle batch of `lang` (`config` a RunConfig, `shots` the target's shot count), drawn at
    random for each oracle pass; None: all of the target's shots, the same batch every time. The engine builds the
    batches by this rule (fslib.engine.stages.Experiment.oracle_batches) and fslib.batch.cost prices them by it.
    Two rules (`oracle_batch_size`):
    - None (the paper preset): a target's oracle is its shots (a random train batch of them when they are more),
      the source's a random batch of min(K, train batch size) source training examples;
    - n (the authors' code): the source's is a random batch of min(K, n) source training examples, a target's is
      all its K shots, except XNLI's, which has 3K (K per class): a random batch of min(K, n) of them."""
    n = config.oracle_batch_size
    if lang == SOURCE_LANG:
        return min(config.k, n or config.train_batch_size)
    if n is None and shots > config.train_batch_size:
        return config.train_batch_size
    if n is not None and get_task(config.task).kind == "classification":
        return min(config.k, n)
    return None
