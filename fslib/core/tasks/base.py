"""What a task is: the `Task` record every layer reads instead of branching on a task's name.

Plain data (no torch, datasets or file reading here): the readers, loaders, features, metrics and cost read a
task's attributes, and dispatch on its `kind` ("tagging", "qa", "classification") and `file_format` where a
task of a new kind needs code of its own. A task of an existing kind and file format needs only a `Task`
(fslib.core.tasks.register_task)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fslib.core.languages import SOURCE_LANG

SPLITS = ("train", "dev", "test")
KINDS = ("tagging", "qa", "classification")
FILE_FORMATS = ("tagging", "nli", "squad")  # the XTREME readers of fslib.formats.xtreme


@dataclass(frozen=True)
class Task:
    """One task: its labels and metric, the paper's hyper-parameters, where its files are and how its splits and
    shots are drawn, and what cost assumes of it where its files are absent (docs/protocol.md)."""

    name: str
    kind: str  # "tagging" | "qa" | "classification": which features, head, metric and hub conversion
    labels: tuple[str, ...]  # empty for span extraction
    metric: str  # the headline metric's name in result rows
    languages: tuple[str, ...]
    learning_rate: float
    epochs: int
    max_length: int
    alpha: float  # probability of stochastic gradient surgery
    doc_stride: int = 128  # qa only: overlap of the windows over long contexts
    title: str = ""  # the task's name in messages ("XNLI"); the name in capitals when empty
    # the notebook a run of the task executes (its views of the predictions): a name under notebooks/ or the path
    # of an .ipynb file (fslib.core.execution.notebook_file); the task's name when empty
    notebook: str = ""
    # ---- files in XTREME's layout (fslib.formats.xtreme): the pattern under data_dir, and the reader
    xtreme_file: str = ""  # e.g. "udpos/{split}-{lang}.tsv" ({split}: the split as named on disk)
    file_format: str = "tagging"  # one of FILE_FORMATS
    test_file: str = "test"  # the file holding the test split (TyDiQA: its official dev file)
    # the fraction of the source's train file held out as its dev split, the same for every run (TyDiQA has no
    # English dev file); a task with one also carves a target's dev split from its train file, without the shots
    source_dev_fraction: float | None = None
    target_shots_split: str = "train"  # the split a target's shots come from (XNLI: dev, removed from it)
    # the folder of treebanks that holds this task's annotation as a source (fslib.formats.treebanks: "ud", "uner")
    treebank_source: str | None = None
    # ---- the Hugging Face hub (fslib.data.hub): the google/xtreme config ("{lang}" and "{ud_name}" filled in),
    # the tag column of a tagging config, and a dataset in MultiNLI's schema giving the English train split instead
    hub_config: str | None = None
    hub_tag_column: str | None = None
    hub_source_train: str | None = None
    # ---- what fslib.batch.cost assumes where the data files are absent: examples per split ("en-train",
    # "target-dev", ...), and the typical padded length of a batch in sub-word tokens
    cost_sizes: Mapping[str, int] = field(default_factory=dict)
    typical_tokens: int = 64

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.file_format not in FILE_FORMATS:
            raise ValueError(f"task {self.name!r}: file_format {self.file_format!r} is not one of "
                             f"{', '.join(FILE_FORMATS)}")
        if not self.title:
            object.__setattr__(self, "title", self.name.upper())
        if not self.notebook:
            object.__setattr__(self, "notebook", self.name)

    def shots(self, k: int) -> int:
        """Training examples of one target language at K shots: K, or K per class (N-way K-shot)."""
        return k * len(self.labels) if self.kind == "classification" else k

    def shot_split(self, lang: str) -> str:
        """The split the shots of `lang` are drawn from."""
        return self.target_shots_split if lang != SOURCE_LANG else "train"

    def file_split(self, split: str) -> str:
        """The file (as named on disk: train, dev or test) that `split` is read from."""
        if split == "test":
            return self.test_file
        return "train" if self.source_dev_fraction is not None else split

    def has_source_dev(self, hold_out_source_dev: bool = True) -> bool:
        """Whether the source has a dev split: False only for a task whose English dev split is held out of its
        train file, trained on the whole file (`hold_out_source_dev: false`, the authors' TyDiQA)."""
        return self.source_dev_fraction is None or hold_out_source_dev
