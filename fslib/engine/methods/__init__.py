"""The paper's methods, one small class each (see base.Method), registered by name in fslib.core.methods.METHODS
(plain data, so that planning a batch imports no torch); `get_method(name)` imports the implementation.

Adding a method: a module in this folder with a `Method` subclass, and one line in fslib.core.methods.METHODS.
"""

from __future__ import annotations

import importlib

from fslib.core.methods import METHODS, MethodEntry, method_entry

__all__ = ["METHODS", "MethodEntry", "get_method"]


def get_method(name: str):
    """The implementation of the method `name` (a fslib.engine.methods.base.Method)."""
    module, cls = method_entry(name).implementation.split(":")
    return getattr(importlib.import_module(f"fslib.engine.methods.{module}"), cls)(name)
