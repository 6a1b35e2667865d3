"""The tasks by name. The kit's four register themselves when fslib.core.tasks is imported; a task defined
outside the kit is registered by `register_task` in a module that the runs' processes import too: one named in
the environment variable FSLIB_TASK_MODULES (comma-separated, inherited by a batch's workers and kernels), or an
installed package's entry point in the group "fslib.tasks"."""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from fslib.core.tasks.base import Task

TASKS: dict[str, Task] = {}
TASK_MODULES_VARIABLE = "FSLIB_TASK_MODULES"
ENTRY_POINT_GROUP = "fslib.tasks"
_loaded: set[str] = set()


def register_task(task: Task) -> Task:
    """Add `task` under its name (a new definition of the same name replaces the old); returns it."""
    if not isinstance(task, Task):
        raise TypeError(f"register_task takes a fslib.core.tasks.Task, got {type(task).__name__}")
    TASKS[task.name] = task
    return task


def load_task_plugins() -> None:
    """Import the modules of FSLIB_TASK_MODULES and the "fslib.tasks" entry points not imported yet."""
    for module in filter(None, (name.strip() for name in os.environ.get(TASK_MODULES_VARIABLE, "").split(","))):
        if module not in _loaded:
            _loaded.add(module)
            try:
                importlib.import_module(module)
            except ImportError as error:
                raise ImportError(f"{TASK_MODULES_VARIABLE} names {module!r}, which cannot be imported: {error}") \
                    from error
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if f"entry point {point.value}" not in _loaded:
            _loaded.add(f"entry point {point.value}")
            point.load()


def get_task(name: str) -> Task:
    """The task called `name`; an unknown name is an error naming the known tasks."""
    if isinstance(name, str) and name not in TASKS:
        load_task_plugins()
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]


def task_names() -> list[str]:
    """Every registered task's name, the plugins' included."""
    load_task_plugins()
    return list(TASKS)
