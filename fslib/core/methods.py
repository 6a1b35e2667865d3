"""The paper's methods by name: which exist, which start from a source model, and where each one's
implementation lives (fslib.engine.methods). Plain data, so that a run's configuration, the parameter files and
batch planning check method names and source models without importing the engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodEntry:
    implementation: str  # "module:Class" in fslib.engine.methods
    uses_source_model: bool  # starts from the source-trained model (which a batch trains first, once)


METHODS: dict[str, MethodEntry] = {
    "zero-shot": MethodEntry("zero_shot:ZeroShot", uses_source_model=True),
    "ord-FS": MethodEntry("ord_fs:OrdFS", uses_source_model=True),
    "ord-FS+dev": MethodEntry("ord_fs:OrdFSDev", uses_source_model=True),
    "co-FT": MethodEntry("co_ft:CoFT", uses_source_model=True),
    "naive-co-train": MethodEntry("co_train:NaiveCoTrain", uses_source_model=False),
    "gradient-co-train": MethodEntry("co_train:GradientCoTrain", uses_source_model=False),
}


def method_entry(name: str) -> MethodEntry:
    """The registry entry of method `name`; an unknown name is an error listing the valid ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[name]
