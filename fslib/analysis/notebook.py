"""What the task notebooks show, so that the notebooks themselves stay thin: the run's configuration from the
parameters cell, a look at the data and the shots, and the scores."""

from __future__ import annotations

import pandas as pd
from IPython.display import Image
from matplotlib.figure import Figure

from fslib.analysis.curves import dev_curves
from fslib.analysis.plots import plot_dev_curves, plot_training_loss, save_figure
from fslib.core.languages import SOURCE_LANG, language
from fslib.core.tasks import SPLITS
from fslib.data import load_shots, load_split
from fslib.engine.tracking import LOSS_FIGURE, TRAINING_FILE
from fslib.formats.errors import DataError
from fslib.store.config import RunConfig, field_names, run_dir


def config_from_parameters(parameters: dict, extra: dict | None = None) -> RunConfig:
    """A RunConfig from the parameters cell's variables (those named like RunConfig fields) and `extra` (any other
    RunConfig field); unknown keys in `extra` are named. None is RunConfig's default, which for a hyper-parameter
    is the paper's value (`resolved()`), so a parameters cell can leave every hyper-parameter at None."""
    extra = dict(extra or {})
    unknown = sorted(set(extra) - set(field_names()))
    if unknown:
        raise ValueError(f"unknown RunConfig field(s) in extra: {', '.join(unknown)}; "
                         f"valid: {', '.join(field_names())}")
    values = {name: parameters[name] for name in field_names() if name in parameters}
    given = {name: value for name, value in {**values, **extra}.items() if value is not None}
    return RunConfig(**given).resolved()


def data_overview(config: RunConfig) -> pd.DataFrame:
    """Examples per language and split (and the number of shots), with each language's script and family."""
    c = config.resolved()
    rows = []
    for lang in c.languages:
        counts = {}
        for split in SPLITS:
            try:
                counts[split] = len(load_split(c.task, lang, split, source=c.source, data_dir=c.data_dir,
                                               k=c.k or None, seed=c.shots_seed, treebank=c.treebank(lang)))
            except DataError:
                counts[split] = None  # e.g. XNLI targets have no train split
        if lang != SOURCE_LANG and lang in c.targets and c.k:
            counts["shots"] = len(load_shots(c.task, lang, c.k, c.shots_seed, source=c.source, data_dir=c.data_dir,
                                             treebank=c.treebank(lang)))
        meta = language(lang)
        rows.append({"lang": lang, "name": meta.name, "script": meta.script, "family": meta.family, **counts})
    return pd.DataFrame(rows).set_index("lang")


def shots_preview(config: RunConfig, langs: list[str] | None = None, n: int = 2) -> pd.DataFrame:
    """The first `n` shots of each target language, as readable text."""
    c = config.resolved()
    rows = []
    for lang in langs or c.targets:
        shots = load_shots(c.task, lang, c.k, c.shots_seed, source=c.source, data_dir=c.data_dir,
                           treebank=c.treebank(lang))
        for row in shots.select(range(min(n, len(shots)))).to_list():
            if "tokens" in row:
                text = " ".join(f"{token}/{tag}" if tag != "O" else token
                                for token, tag in zip(row["tokens"], row["tags"]))
            elif "premise" in row:
                text = f"{row['premise']} ⇒ {row['hypothesis']} [{row['label']}]"
            else:
                text = f"{row['question']} → {row['answers']['text'][0]}"
            rows.append({"lang": lang, "example": text})
    return pd.DataFrame(rows)


def scores(rows: pd.DataFrame) -> pd.DataFrame:
    """The run's final scores: one row per language, one column per metric, the selected epoch."""
    test = rows[rows["split"] == "test"]
    table = test.pivot_table(index="lang", columns="metric", values="value", sort=False)
    table["epoch"] = test.groupby("lang", sort=False)["epoch"].first()
    return table.round(2)


def curves_figure(rows: pd.DataFrame) -> Figure | None:
    """Dev score per epoch of every language with dev rows (None when the method records no curves)."""
    if not (rows["split"] == "dev").any():
        return None
    first = rows.iloc[0]
    curves = dev_curves(rows, first["task"], int(first["k"]), first["method"],
                        langs=list(rows.loc[rows["split"] == "dev", "lang"].unique()))
    return plot_dev_curves(curves, title=f"{first['task']} {first['method']} K={first['k']}: dev scores")


def loss_figure(config: RunConfig) -> Image | None:
    """The run's training loss per logging interval and per epoch, every stage it trained (from its
    `training.csv`), saved as its `training_loss.png`, which the reports' index shows, and shown as that file (the
    figure is drawn once); None when the run trained nothing."""
    path = run_dir(config) / TRAINING_FILE
    if not path.exists():
        return None
    training = pd.read_csv(path)
    if training.empty:
        return None
    figure = plot_training_loss(training, title=f"{config.task} {config.label} K={config.k} seed {config.seed}: "
                                                "training loss")
    return Image(filename=save_figure(figure, path.parent / LOSS_FIGURE, dpi=100))
