"""The treebank sources (folders of treebanks, read by fslib.formats.ud and fslib.formats.uner): what each is, how
its folder is laid out, and the one task whose annotation it holds (the task whose `treebank_source` names it,
fslib.core.tasks). The loaders (fslib.data) and the preflight (fslib.batch.preflight) check a run against it."""

from __future__ import annotations

from fslib.core.tasks import get_task, task_names

# source -> (what it is, the prefix of its treebanks' folders)
TREEBANK_SOURCES = {"ud": ("Universal Dependencies", "UD"), "uner": ("Universal NER", "UNER")}


def treebank_source_problem(source: str, task: str, data_dir) -> str | None:
    """Why a run of `task` cannot read treebank source `source` from `data_dir`; None if it can."""
    what, prefix = TREEBANK_SOURCES[source]
    holds = [name for name in task_names() if get_task(name).treebank_source == source]
    if task not in holds:
        held = ", ".join(name.upper() for name in holds) or "no task's"
        return f"source={source!r} ({what} treebanks) has {held} data only, not {task!r}"
    if not data_dir:
        return f"source={source!r} needs data_dir: a folder of {what} treebanks ({prefix}_<Language>-<Name>/...)"
    return None
