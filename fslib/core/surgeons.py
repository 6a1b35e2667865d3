"""The gradient surgeons by name, and where the surgery happens in a step. Plain data, so that a run's
configuration checks its `surgeon` and `surgery_granularity` without importing torch; the engine imports the
class (fslib.engine.surgery.get_surgeon).

A surgeon is a registered name, or "package.module:Class" for one defined outside the kit (a `Surgeon`
subclass importable wherever the run executes)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fslib.core.languages import SOURCE_LANG
from fslib.core.tasks import get_task

DEFAULT_SURGEON = "stochastic"
SURGEONS: dict[str, str] = {
    "stochastic": "fslib.engine.surgeons.stochastic:StochasticGradientSurgery",  # the paper's Algorithm 1
    "per_layer": "fslib.engine.surgeons.per_layer:PerLayerSurgery",  # its projection per parameter tensor
    "gradvac": "fslib.engine.surgeons.gradvac:GradVac",  # Wang et al. 2021, per-tensor EMA target cosines
    "pcgrad_languages": "fslib.engine.surgeons.pcgrad_languages:LanguagePCGrad",  # per-language gradients
    "upgrad": "fslib.engine.surgeons.upgrad:LanguageUPGrad",  # TorchJD's UPGrad over per-language gradients
}


@dataclass(frozen=True)
class SurgeonArg:
    """One parameter of a registered surgeon (a run's `surgeon_args`): its default and its valid range."""

    default: float
    low: float
    high: float
    doc: str


# The parameters of each registered surgeon beyond alpha (a surgeon not named here takes none). A "module:Class"
# surgeon's arguments go to its constructor as they are (it validates them).
SURGEON_ARGS: dict[str, dict[str, SurgeonArg]] = {
    "gradvac": {"beta": SurgeonArg(0.01, 0.0, 1.0, "the rate of the target cosines' moving average "
                                                    "(Wang et al. 2021: 1e-2)")},
}


def check_surgeon_args(name: str, args: dict | None) -> dict | None:
    """`args` validated for surgeon `name`, with the values at their defaults dropped (None when nothing is
    left, so that a run naming the defaults keeps the hash of one naming none). Unknown names and values out of
    range are errors naming what is valid."""
    if args is None:
        return None
    if not isinstance(args, dict):
        raise ValueError(f"surgeon_args must be a mapping of parameter names to numbers, not {args!r}")
    if name not in SURGEONS:  # "module:Class": its constructor checks them
        return dict(args) or None
    valid = SURGEON_ARGS.get(name, {})
    kept = {}
    for key, value in args.items():
        if key not in valid:
            raise ValueError(f"surgeon_args: surgeon {name!r} has no parameter {key!r}; valid: "
                             f"{', '.join(valid) or 'none'}")
        spec = valid[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not spec.low <= value <= spec.high:
            raise ValueError(f"surgeon_args.{key} of surgeon {name!r} must be a number in [{spec.low}, {spec.high}] "
                             f"({spec.doc}), not {value!r}")
        if value != spec.default:
            kept[key] = value
    return kept or None


def surgeon_kwargs(name: str, args: dict | None) -> dict:
    """The constructor arguments of surgeon `name`: its defaults, overridden by `args`."""
    return {**{key: spec.default for key, spec in SURGEON_ARGS.get(name, {}).items()}, **(args or {})}
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


# Surgeons of the step's own batch (per-language gradients): once per optimiser step only.
STEP_ONLY = ("pcgrad_languages", "upgrad")


def check_surgeon(name: str, granularity: str) -> None:
    """A known surgeon at a granularity it supports."""
    surgeon_path(name)
    if name in STEP_ONLY and granularity != "step":
        raise ValueError(f"surgeon {name!r} combines the per-language gradients of the whole step's batch: "
                         f"surgery_granularity must be 'step', not {granularity!r}")


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
