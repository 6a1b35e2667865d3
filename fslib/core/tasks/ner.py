"""Named-entity recognition: WikiANN/PAN-X in XTREME (panx/), PER/ORG/LOC in BIO tags, seqeval F1; the Universal
NER treebanks as source "uner"."""

from fslib.core.languages import TASK_LANGUAGES
from fslib.core.tasks.base import Task
from fslib.core.tasks.registry import register_task

NER_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

NER = register_task(Task(
    "ner", "tagging", NER_LABELS, "f1", TASK_LANGUAGES["ner"], learning_rate=2e-5, epochs=10, max_length=128,
    alpha=1.0, xtreme_file="panx/{split}-{lang}.tsv", file_format="tagging", treebank_source="uner",
    hub_config="PAN-X.{lang}", hub_tag_column="ner_tags",
    cost_sizes={"en-train": 20_000, "en-dev": 10_000, "en-test": 10_000, "target-dev": 10_000,
                "target-test": 10_000},
    typical_tokens=32))
