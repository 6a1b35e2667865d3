"""The tasks, one module each (ner, pos, tydiqa, xnli), found by name in a registry: `get_task(name)`. A new task
is one `Task` passed to `register_task` (see fslib.core.tasks.registry for how the runs' processes find one
defined outside the kit); docs/protocol.md gives the paper's settings."""

from fslib.core.tasks.base import FILE_FORMATS, KINDS, SPLITS, Task
from fslib.core.tasks.ner import NER_LABELS
from fslib.core.tasks.pos import UPOS_LABELS
from fslib.core.tasks.registry import TASKS, get_task, register_task, task_names
from fslib.core.tasks.tydiqa import TYDIQA_SOURCE_DEV_FRACTION
from fslib.core.tasks.xnli import XNLI_LABELS

__all__ = ["FILE_FORMATS", "KINDS", "NER_LABELS", "SPLITS", "TASKS", "TYDIQA_SOURCE_DEV_FRACTION", "Task",
           "UPOS_LABELS", "XNLI_LABELS", "get_task", "register_task", "task_names"]
