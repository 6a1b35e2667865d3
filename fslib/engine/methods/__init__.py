"""The paper's methods, one small class each (see base.Method), registered here under their names in the results
tables. The registry is plain data, so that planning a batch (which runs start from a source model, which method
names are valid) imports no torch; `get_method(name)` imports the implementation.

Adding a method: a module in this folder with a `Method` subclass, and one line in `METHODS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class MethodEntry:
    implementation: str  # "module:Class" in fslib.methods
    uses_source_model: bool  # starts from the source-trained model (which a batch trains first, once)


METHODS: dict[str, MethodEntry] = {
    "zero-shot": MethodEntry("zero_shot:ZeroShot", uses_source_model=True),
    "ord-FS": MethodEntry("ord_fs:OrdFS", uses_source_model=True),
    "ord-FS+dev": MethodEntry("ord_fs:OrdFSDev", uses_source_model=True),
    "co-FT": MethodEntry("co_ft:CoFT", uses_source_model=True),
    "naive-co-train": MethodEntry("co_train:NaiveCoTrain", uses_source_model=False),
    "gradient-co-train": MethodEntry("co_train:GradientCoTrain", uses_source_model=False),
}


def get_method(name: str):
    """The implementation of the method `name` (a fslib.methods.base.Method)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    module, cls = METHODS[name].implementation.split(":")
    return getattr(importlib.import_module(f"fslib.engine.methods.{module}"), cls)(name)
