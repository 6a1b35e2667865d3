"""Natural-language inference: XNLI (premise, hypothesis, three labels), accuracy. English trains on MultiNLI; a
target has no train split: its shots (K per class) come from its dev split and are removed from it."""

from fslib.core.languages import TASK_LANGUAGES
from fslib.core.tasks.base import Task
from fslib.core.tasks.registry import register_task

XNLI_LABELS = ("contradiction", "entailment", "neutral")

XNLI = register_task(Task(
    "xnli", "classification", XNLI_LABELS, "accuracy", TASK_LANGUAGES["xnli"], learning_rate=2e-5, epochs=10,
    max_length=128, alpha=0.1, title="XNLI", xtreme_file="xnli/{split}-{lang}.tsv", file_format="nli",
    target_shots_split="dev", hub_config="XNLI", hub_source_train="nyu-mll/multi_nli",
    cost_sizes={"en-train": 392_702, "en-dev": 2_490, "en-test": 5_010, "target-dev": 2_490, "target-test": 5_010},
    typical_tokens=64))
