"""Part-of-speech tagging: Universal Dependencies in XTREME (udpos/), the 17 UPOS tags, accuracy reported as
token-level F1; the UD treebanks themselves as source "ud"."""

from fslib.core.languages import TASK_LANGUAGES
from fslib.core.tasks.base import Task
from fslib.core.tasks.registry import register_task

UPOS_LABELS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
               "SCONJ", "SYM", "VERB", "X")

POS = register_task(Task(
    "pos", "tagging", UPOS_LABELS, "f1", TASK_LANGUAGES["pos"], learning_rate=2e-5, epochs=10, max_length=128,
    alpha=1.0, xtreme_file="udpos/{split}-{lang}.tsv", file_format="tagging", treebank_source="ud",
    hub_config="udpos.{ud_name}", hub_tag_column="pos_tags",
    cost_sizes={"en-train": 21_253, "en-dev": 3_974, "en-test": 5_440, "target-dev": 1_000, "target-test": 2_000},
    typical_tokens=40))
