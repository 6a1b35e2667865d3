"""The gradient surgeons by name, and where the surgery happens in a step. Plain data, so that a run's
configuration checks its `surgeon` and `surgery_granularity` without importing torch; the engine imports the
class (fslib.engine.surgery.get_surgeon).

A surgeon is a registered name, or "package.module:Class" for one defined outside the kit (a `Surgeon`
subclass importable wherever the run executes)."""

from __future__ import annotations

import re

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
