"""Figures and styled tables of the analyses. Every plot function returns a `matplotlib.figure.Figure` built
without pyplot (no global state, nothing shown twice in a notebook); `save_figure` writes it as PNG. The table
stylers return a pandas `Styler` (rendered by Jupyter, or `.to_html()`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fslib.analysis.tables import (
    COLOUR_CLASSES,
    benefit_extremes,
    best_per_k,
    best_per_language,
    language_colour_classes,
    main_colour_classes,
    main_table_wide,
)
from fslib.core.languages import language

# Background of each colour class (gains green, losses red, stronger for 3 points or more).
CLASS_COLOURS = dict(zip(COLOUR_CLASSES, ("#74c476", "#c7e9c0", "#fcbba1", "#fb6a4a")))
# Figure 2's bar colours and Figure 5's line styles.
SCRIPT_STUDY_COLOURS = {"ord-FS": "#2ca02c", "gradient-single": "#1f77b4", "gradient-subset": "#e377c2",
                        "gradient-all": "#d62728"}
SELECTION_STYLES = {"ord-FS": ("#2ca02c", "--"), "ord-FS+dev": ("#2ca02c", "-"),
                    "gradient-co-train": ("#d62728", "--"), "gradient-co-train+dev": ("#d62728", "-")}


def save_figure(figure: Figure, path: Path | str, dpi: int = 150) -> Path:
    """Write a figure as PNG (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def _css(classes: pd.DataFrame, bold: pd.DataFrame) -> pd.DataFrame:
    background = classes.map(lambda name: f"background-color: {CLASS_COLOURS[name]};" if isinstance(name, str) else "")
    weight = bold.reindex_like(classes).fillna(False).astype(bool).map(
        lambda is_best: "font-weight: bold;" if is_best else "")
    return background + weight


# ---- tables -----------------------------------------------------------------------------------------------
def style_main_table(main: pd.DataFrame, precision: int = 2):
    """Table 1 from `main_table`: rows (k, method), one column per task showing mean ± sd, cells coloured by
    their difference to zero-shot, the best method per task and K in bold."""
    means, sds = main_table_wide(main, "mean"), main_table_wide(main, "sd")

    def cell(mean: float, sd: float) -> str:
        if pd.isna(mean):
            return ""
        return f"{mean:.{precision}f}" + ("" if pd.isna(sd) else f" ± {sd:.{precision}f}")

    shown = pd.DataFrame({task: [cell(m, s) for m, s in zip(means[task], sds[task])] for task in means.columns},
                         index=means.index)
    css = _css(main_colour_classes(means), best_per_k(means))
    return shown.style.apply(lambda _: css, axis=None)


def style_per_language(table: pd.DataFrame, precision: int = 2):
    """A `per_language_table` (with its zero-shot column): cells coloured by their difference to zero-shot,
    the best few-shot method of each language in bold."""
    css = _css(language_colour_classes(table), best_per_language(table))
    return table.style.format(precision=precision, na_rep="").apply(lambda _: css, axis=None)


# ---- Tables 2 and 8 -------------------------------------------------------------------------------------------
def colours(n: int) -> list[tuple]:
    """n distinct colours: tab10 (tab20 beyond 10), evenly spaced hues beyond 20. Matplotlib's own colour maps:
    seaborn, needed only for the heatmaps, takes seconds to import in every run's kernel."""
    if n <= 20:
        return list(colormaps["tab10" if n <= 10 else "tab20"].colors[:n])
    return [colormaps["hsv"](i / n) for i in range(n)]


def script_palette(scripts) -> dict[str, tuple]:
    names = sorted(set(scripts))
    return dict(zip(names, colours(len(names))))


def plot_language_benefit(benefit: pd.DataFrame, n: int = 5, title: str | None = None) -> Figure:
    """Horizontal bars of delta for the n languages that gain most and the n that gain least (all languages
    when there are at most 2n), coloured by script."""
    if len(benefit) > 2 * n:
        top, bottom = benefit_extremes(benefit, n)
        shown = pd.concat([top, bottom.iloc[::-1]], ignore_index=True)
    else:
        shown = benefit.reset_index(drop=True)
    scripts = shown["lang"].map(lambda code: language(code).script)
    palette = script_palette(scripts)
    figure = Figure(figsize=(6, 0.35 * len(shown) + 1.2))
    ax = figure.subplots()
    positions = np.arange(len(shown))[::-1]
    ax.barh(positions, shown["delta"], color=[palette[script] for script in scripts])
    ax.set_yticks(positions, shown["lang"])
    ax.axvline(0, color="black", linewidth=0.8)
    if len(benefit) > 2 * n:
        ax.axhline(positions[n - 1] - 0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("Δ (points)")
    ax.legend(handles=[Patch(color=colour, label=script) for script, colour in palette.items()], title="script",
              fontsize="small", loc="best")
    ax.set_title(title or f"top and bottom {n} languages")
    figure.tight_layout()
    return figure


# ---- Figure 1 ------------------------------------------------------------------------------------------------
def plot_similarity_heatmaps(matrices: dict[str, pd.DataFrame], vmax: float | None = None,
                             cmap: str = "Blues") -> Figure:
    """Figure 1: one heatmap per method (e.g. naive-co-train and gradient-co-train), side by side, on one
    colour scale from 0 to `vmax` (by default the largest off-diagonal cell) with a shared colour bar. Negative
    cells (conflicting gradients) are masked and so stay white; thin lines separate language families (the
    matrices come ordered by `similarity_matrix`)."""
    import seaborn as sns  # here only: see colours()

    if vmax is None:  # the largest off-diagonal cosine: the diagonal (1) would wash the pairs out
        off = [matrix.to_numpy(dtype=float)[~np.eye(len(matrix), dtype=bool)] for matrix in matrices.values()]
        off = np.concatenate(off) if off else np.array([])
        vmax = float(np.nanmax(off)) if np.any(off > 0) else 1.0
    size = max(len(matrix) for matrix in matrices.values())
    side = min(3 + 0.16 * size, 10)
    figure = Figure(figsize=(side * len(matrices) + 1, side))
    axes = figure.subplots(1, len(matrices) + 1, width_ratios=[1] * len(matrices) + [0.04])
    for index, (ax, (name, matrix)) in enumerate(zip(axes[:-1], matrices.items())):
        mask = ~(matrix.to_numpy(dtype=float) >= 0)  # negatives and missing cells
        last = index == len(matrices) - 1
        sns.heatmap(matrix, mask=mask, vmin=0, vmax=vmax, cmap=cmap, square=True, ax=ax, cbar=last,
                    cbar_ax=axes[-1] if last else None, cbar_kws={"label": "cosine similarity"},
                    xticklabels=True, yticklabels=True)
        ax.set_facecolor("white")
        families = [language(code).family for code in matrix.index]
        for position in range(1, len(families)):
            if families[position] != families[position - 1]:
                ax.axhline(position, color="grey", linewidth=0.4)
                ax.axvline(position, color="grey", linewidth=0.4)
        ax.set_title(name)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=max(5, 10 - size // 10))
    figure.tight_layout()
    return figure


# ---- Figure 2 ------------------------------------------------------------------------------------------------
def plot_script_study(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Figure 2: grouped bars per language, one bar per method (rows of `script_study_table`); missing values
    are left out."""
    figure = Figure(figsize=(1 + 0.9 * table.shape[1], 4))
    ax = figure.subplots()
    width = 0.8 / max(len(table.index), 1)
    positions = np.arange(table.shape[1])
    for index, method in enumerate(table.index):
        values = table.loc[method].to_numpy(dtype=float)
        present = ~np.isnan(values)
        ax.bar(positions[present] + (index - (len(table.index) - 1) / 2) * width, values[present], width,
               label=method, color=SCRIPT_STUDY_COLOURS.get(method))
    ax.set_xticks(positions, table.columns)
    finite = table.to_numpy(dtype=float)
    finite = finite[~np.isnan(finite)]
    if len(finite):
        ax.set_ylim(max(0.0, finite.min() - 10), min(100.0, finite.max() + 5))
    ax.set_ylabel("test score")
    return _finish(figure, ax, title, legend_outside=True)


def _finish(figure: Figure, ax, title: str | None, legend_outside: bool) -> Figure:
    """The legend (beside the axes, or inside), the title, a tight layout."""
    ax.legend(fontsize="small", **({"loc": "upper left", "bbox_to_anchor": (1.0, 1.0)} if legend_outside else {}))
    if title:
        ax.set_title(title)
    figure.tight_layout()
    return figure


# ---- Figures 3 and 5 ---------------------------------------------------------------------------------------
def plot_dev_curves(curves: pd.DataFrame, title: str | None = None) -> Figure:
    """Figure 3: one line per language of `dev_curves` (dev score per epoch); the legend names the languages
    whose best epoch is the first."""
    figure = Figure(figsize=(6, 4))
    ax = figure.subplots()
    langs = list(dict.fromkeys(curves["lang"]))
    palette = dict(zip(langs, colours(len(langs))))
    for lang in langs:
        curve = curves[curves["lang"] == lang].sort_values("epoch")
        first_best = curve["value"].idxmax() == curve.index[0]
        ax.plot(curve["epoch"], curve["value"], marker="o", markersize=3, color=palette[lang],
                label=f"{lang} (best at epoch 1)" if first_best else lang)
    ax.set_xlabel("epoch")
    ax.set_ylabel("dev score")
    return _finish(figure, ax, title, legend_outside=True)


def plot_selection_curves(curves: pd.DataFrame, title: str | None = None) -> Figure:
    """Figure 5: one line per selection rule of `selection_curves` (ord-FS, ord-FS+dev, gradient-co-train,
    gradient-co-train+dev): the test score of the picked epoch among the first n epochs."""
    figure = Figure(figsize=(6, 4))
    ax = figure.subplots()
    for rule, curve in curves.groupby("rule", sort=False):
        colour, style = SELECTION_STYLES.get(rule, (None, "-"))
        ax.plot(curve["epoch"], curve["value"], linestyle=style, color=colour, marker="o", markersize=3, label=rule)
    ax.set_xlabel("number of epochs n")
    ax.set_ylabel("test score of the selected epoch")
    return _finish(figure, ax, title, legend_outside=False)


# ---- training loss -------------------------------------------------------------------------------------------
def plot_training_loss(training: pd.DataFrame, title: str | None = None) -> Figure:
    """A run's `training.csv` (fslib.engine.tracking): one panel per kind of stage (source-training, adapting,
    co-training), the mean loss of each logging interval as a line per stage and each epoch's mean as dots,
    against the optimiser step."""
    families = list(dict.fromkeys(training["stage"].str.split().str[0]))
    figure = Figure(figsize=(4.5 * len(families), 3.5))
    axes = np.atleast_1d(figure.subplots(1, len(families), squeeze=False)[0])
    for ax, family in zip(axes, families):
        rows = training[training["stage"].str.split().str[0] == family]
        for stage, stage_rows in rows.groupby("stage", sort=False):
            interval = stage_rows[stage_rows["kind"] == "interval"]
            epochs = stage_rows[stage_rows["kind"] == "epoch"]
            line, = ax.plot(interval["step"], interval["loss"], linewidth=1, label=stage)
            ax.plot(epochs["step"], epochs["loss"], "o", markersize=3, color=line.get_color())
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("training loss")
        ax.set_title(family, fontsize="medium")
        if rows["stage"].nunique() > 1:
            ax.legend(fontsize="x-small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def style_comparisons(comparisons: pd.DataFrame, precision: int = 2):
    """`analysis.main_comparisons` as a table: per (task, K, baseline, method) the difference with its 95%
    interval and the p-values; rows significant after the Holm correction in bold with a '*'."""
    shown = pd.DataFrame({
        "task": comparisons["task"], "k": comparisons["k"], "vs": comparisons["baseline"],
        "method": comparisons["method"],
        "Δ [95% CI]": [f"{d:+.{precision}f} [{lo:+.{precision}f}, {hi:+.{precision}f}]" + ("*" if s else "")
                       for d, lo, hi, s in zip(comparisons["delta"], comparisons["ci_low"], comparisons["ci_high"],
                                               comparisons["significant"])],
        "p": comparisons["p_value"].map(lambda p: f"{p:.3g}"),
        "p (Holm)": comparisons["p_holm"].map(lambda p: f"{p:.3g}"),
        "languages × seeds": [f"{n} × {s}" for n, s in zip(comparisons["n_langs"], comparisons["n_seeds"])],
    })
    weight = np.where(comparisons["significant"].to_numpy(bool), "font-weight: bold;", "")
    return shown.style.hide(axis="index").apply(lambda _: np.repeat(weight[:, None], shown.shape[1], axis=1),
                                                axis=None)
