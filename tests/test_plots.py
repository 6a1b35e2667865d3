"""Figures and styled tables of fslib.analysis.plots: each builds without error and draws what it should."""

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fslib.analysis import plots  # noqa: E402
from fslib.analysis import tables as analysis  # noqa: E402
from fslib.analysis.reference import (  # noqa: E402
    as_result_rows,
    load_reference_script_study,
    reference_results,
)
from fslib.core.languages import language  # noqa: E402


def bold_cells(html: str) -> int:
    """Number of cells whose CSS rule (the Styler groups cells with the same style) sets bold."""
    blocks = re.findall(r"([^{}]*)\{([^}]*)\}", html.split("</style>")[0])
    return sum(len(re.findall(r"#T_\w+_row\d+_col\d+", selectors)) for selectors, rule in blocks
               if "font-weight: bold" in rule)


@pytest.fixture(scope="module")
def reference():
    return reference_results()


def test_style_main_table_colours_and_bold(reference):
    two_seeds = pd.concat([reference, reference.assign(seed=1, value=reference["value"] + 1)])
    html = plots.style_main_table(analysis.main_table(two_seeds)).to_html()
    # 3 tasks x 3 K: gradient-co-train is the best few-shot method in each (bold)
    assert bold_cells(html) == 9
    assert plots.CLASS_COLOURS["+3 or more"] in html and plots.CLASS_COLOURS["-3 or more"] in html
    assert "59.84 ± 0.71" in html  # TyDiQA gradient-co-train K=5: mean of 59.34 and 60.34, sd 1/sqrt(2)


def test_style_per_language(reference):
    table = analysis.per_language_table(reference, "xnli", 5)
    html = plots.style_per_language(table).to_html()
    assert bold_cells(html) == analysis.best_per_language(table).to_numpy().sum() == 19
    assert "85.19" in html


def bars(figure: Figure) -> int:
    return sum(len(container) for ax in figure.axes for container in ax.containers)


def test_language_benefit_bars(reference, tmp_path):
    benefit = analysis.language_benefit(reference, "ner", 5)
    figure = plots.plot_language_benefit(benefit, n=5)
    assert isinstance(figure, Figure) and bars(figure) == 10
    ax = figure.axes[0]
    labels = [label.get_text() for label in ax.get_yticklabels()]
    heights = dict(zip(labels, ax.get_yticks()))
    assert sorted(heights, key=heights.get, reverse=True) == ["pa", "zh", "ar", "vi", "hi", "sw", "af", "nl", "ms",
                                                              "pl"]  # largest gain on top
    assert len(figure.axes[0].get_legend().get_texts()) == len({language(code).script
                                                                  for code in labels})
    small = plots.plot_language_benefit(analysis.language_benefit(reference, "tydiqa", 5), n=5)
    assert bars(small) == 8  # 8 targets <= 2n: all of them
    path = plots.save_figure(figure, tmp_path / "figures" / "benefit.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_similarity_heatmaps_mask_negative_cells():
    langs = ["ar", "en", "de", "fr"]
    rng = np.random.default_rng(0)
    values = rng.uniform(-0.5, 0.5, (4, 4))
    values = (values + values.T) / 2
    np.fill_diagonal(values, 1.0)
    naive = pd.DataFrame(values, index=langs, columns=langs)
    gradient = naive.abs()
    figure = plots.plot_similarity_heatmaps({"naive-co-train": naive, "gradient-co-train": gradient})
    assert isinstance(figure, Figure) and len(figure.axes) == 3  # two heatmaps and one colour bar
    for ax, matrix in zip(figure.axes[:2], (naive, gradient)):
        cells = ax.collections[0].get_array()
        assert np.ma.getmaskarray(cells).sum() == (matrix.to_numpy() < 0).sum()
    assert (naive.to_numpy() < 0).sum() > 0
    assert [ax.get_title() for ax in figure.axes[:2]] == ["naive-co-train", "gradient-co-train"]


def test_script_study_bars():
    table = analysis.script_study_table(as_result_rows(load_reference_script_study()), "ner", 5)
    figure = plots.plot_script_study(table, title="NER")
    assert bars(figure) == 4 * 8
    table.loc["gradient-subset", "ar"] = float("nan")
    assert bars(plots.plot_script_study(table)) == 4 * 8 - 1


def test_dev_and_selection_curves():
    curves = pd.DataFrame({"lang": ["ar"] * 3 + ["fi"] * 3, "epoch": [1, 2, 3] * 2,
                           "value": [50, 45, 40, 30, 40, 45], "seeds": 1})
    figure = plots.plot_dev_curves(curves, title="TyDiQA ord-FS+dev")
    lines = figure.axes[0].get_lines()
    assert len(lines) == 2 and lines[0].get_label() == "ar (best at epoch 1)" and lines[1].get_label() == "fi"

    rules = ["ord-FS", "ord-FS+dev", "gradient-co-train", "gradient-co-train+dev"]
    selection = pd.DataFrame({"rule": np.repeat(rules, 3), "epoch": [1, 2, 3] * 4,
                              "value": np.arange(12, dtype=float), "seeds": 1})
    figure = plots.plot_selection_curves(selection)
    assert [line.get_label() for line in figure.axes[0].get_lines()] == rules
