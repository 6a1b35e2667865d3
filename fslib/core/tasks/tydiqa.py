"""Extractive question answering: TyDiQA-GoldP (SQuAD v1.1 JSON). Its official dev file is the test split; the
English dev split is a fixed tenth of the train file, a target's dev split its train file without the shots."""

from fslib.core.languages import TASK_LANGUAGES
from fslib.core.tasks.base import Task
from fslib.core.tasks.registry import register_task

TYDIQA_SOURCE_DEV_FRACTION = 0.1

# The paper's text: 2e-5 and 60 epochs for every stage; the authors' script: 3e-5 and 30 (params/authors).
TYDIQA = register_task(Task(
    "tydiqa", "qa", (), "f1", TASK_LANGUAGES["tydiqa"], learning_rate=2e-5, epochs=60, max_length=384, alpha=0.1,
    title="TyDiQA", xtreme_file="tydiqa/tydiqa-goldp-v1.1-{split}/tydiqa.goldp.{lang}.{split}.json",
    file_format="squad", test_file="dev", source_dev_fraction=TYDIQA_SOURCE_DEV_FRACTION,
    hub_config="tydiqa",
    cost_sizes={"en-train": 3_696, "en-dev": 440, "target-train": 5_800, "target-dev": 580},  # files: train, dev
    typical_tokens=320))
