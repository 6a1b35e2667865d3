"""The aggregators report (fslib.analysis.aggregators, notebooks/aggregators.ipynb) on run folders written here:
costs, gains and per-language gains computed by hand, the report planned only where another surgeon ran, and
the notebook executed end to end writing its table, figure and CSVs."""

import json

import pandas as pd
import pytest

from fslib.analysis import aggregators
from fslib.analysis.reports import plan_reports
from fslib.core.execution import execute_notebook
from fslib.store.results import COLUMNS

# label -> (surgeon, train seconds, oracle passes, language passes, score shift per target)
RUNS = {"naive-co-train": ("none", 10.0, 0, 0, 0.0), "gradient-co-train": ("stochastic", 14.0, 20, 0, 2.0),
        "gradvac": ("gradvac", 15.0, 20, 0, 3.0), "upgrad": ("upgrad", 25.0, 0, 36, -1.0)}
LANGS = {"en": 80.0, "qa": 50.0, "qb": 40.0, "qc": 30.0}


def write_runs(root, runs=RUNS):
    """Two seeds per label: 20 steps; a target's score = base + shift + seed + (1.5 for qa under gradvac)."""
    for label, (surgeon, seconds, oracle, language, shift) in runs.items():
        for seed in (1, 2):
            folder = root / "ner" / label / "k5" / f"seed{seed}" / "tiny-x"
            folder.mkdir(parents=True)
            method = "naive-co-train" if surgeon == "none" else "gradient-co-train"
            config = {"task": "ner", "method": method, "method_label": label if label != method else None, "k": 5,
                      "seed": seed, "model": "tiny", "surgeon": "stochastic" if surgeon == "none" else surgeon}
            (folder / "config.json").write_text(json.dumps(config))
            (folder / "timings.json").write_text(json.dumps({"train": seconds + seed, "evaluate": 3.0}))
            if surgeon != "none":
                log = pd.DataFrame({"epoch": [1, 2], "step": [10, 20], "surgery_rate": [1.0, 1.0],
                                    "conflict_rate": [0.2, 0.4], "mean_cosine": [0.1, 0.3],
                                    "oracle_qa": [oracle / 2, oracle / 2], "oracle_en": [0, 0]})
                if language:  # its oracle_<lang> columns then count targets seen, not passes
                    log["language_passes"] = [language / 2, language / 2]
                    log["oracle_qa"] = [7, 7]
                log.to_csv(folder / "surgery.csv", index=False)
            rows = [{"task": "ner", "method": label, "model": "tiny", "k": 5, "seed": seed, "lang": lang,
                     "split": "test", "metric": "f1", "value": base + (shift if lang != "en" else 0.0) + seed
                     + (1.5 if label == "gradvac" and lang == "qa" else 0.0), "epoch": None, "step": None,
                     "run_id": f"{label}-{seed}", "config_hash": label}
                    for lang, base in LANGS.items()]
            pd.DataFrame(rows, columns=COLUMNS).to_csv(folder / "results.csv", index=False)
    return root


def test_costs_and_gains_by_hand(tmp_path):
    runs_dir = write_runs(tmp_path / "runs")
    runs = aggregators.load_surgeon_runs(runs_dir)
    assert len(runs) == 8 and set(runs[runs["method"] == "naive-co-train"]["surgeon"]) == {"none"}
    assert aggregators.surgeon_methods(runs, "ner", 5) == ["gradient-co-train", "gradvac", "upgrad"]
    costs = aggregators.run_costs(runs, "ner", 5)
    # train seconds: mean of (s + 1, s + 2) = s + 1.5; naive 11.5
    assert costs.loc["gradvac", "time_vs_naive"] == pytest.approx(16.5 / 11.5)
    assert costs.loc["upgrad", "time_vs_naive"] == pytest.approx(26.5 / 11.5)
    assert costs.loc["upgrad", "extra_passes_per_step"] == pytest.approx(36 / 20)
    assert costs.loc["gradvac", "extra_passes_per_step"] == pytest.approx(20 / 20)
    assert costs.loc["gradvac", "conflict_rate"] == pytest.approx(0.3)

    results = pd.concat([pd.read_csv(path) for path in sorted(runs_dir.rglob("results.csv"))], ignore_index=True)
    comparison = aggregators.surgeon_comparison(results, runs, "ner", 5)
    pairs = set(zip(comparison["method"], comparison["baseline"]))
    assert pairs == {("gradient-co-train", "naive-co-train"), ("gradvac", "naive-co-train"),
                     ("upgrad", "naive-co-train"), ("gradvac", "gradient-co-train"), ("upgrad", "gradient-co-train")}
    delta = comparison.set_index(["method", "baseline"])["delta"]
    assert delta["gradvac", "naive-co-train"] == pytest.approx(3.0 + 1.5 / 3)  # qa's extra 1.5 over 3 targets
    assert delta["upgrad", "gradient-co-train"] == pytest.approx(-3.0)
    assert comparison["p_holm"].ge(comparison["p_value"]).all()

    gains = aggregators.per_language_gains(results, "ner", 5, ["gradient-co-train", "gradvac", "upgrad"])
    assert list(gains.index) == ["qa", "qb", "qc"]  # targets only
    assert gains.loc["qa", "gradvac"] == pytest.approx(4.5) and gains.loc["qb", "gradvac"] == pytest.approx(3.0)
    assert (gains["upgrad"] == -1.0).all()


def test_the_report_is_planned_only_where_another_surgeon_ran(tmp_path):
    only_paper = write_runs(tmp_path / "paper", {label: RUNS[label] for label in ("naive-co-train",
                                                                                  "gradient-co-train")})
    results = pd.concat([pd.read_csv(path) for path in only_paper.rglob("results.csv")], ignore_index=True)
    jobs, skipped = plan_reports(results, only_paper)
    assert "aggregators" not in [notebook for _, notebook, _ in jobs] and "aggregators_ner" in skipped
    runs_dir = write_runs(tmp_path / "all")
    results = pd.concat([pd.read_csv(path) for path in runs_dir.rglob("results.csv")], ignore_index=True)
    jobs, _ = plan_reports(results, runs_dir)
    assert ("aggregators_ner", "aggregators", {"task": "ner", "k": 5}) in jobs


def test_the_notebook_writes_its_table_figure_and_gains(tmp_path):
    runs_dir = write_runs(tmp_path / "runs")
    out = tmp_path / "report"
    execute_notebook("aggregators", tmp_path / "executed.ipynb",
                     {"results_path": str(runs_dir), "output_dir": str(out), "task": "ner", "k": 5})
    table = pd.read_csv(out / "aggregators.csv")
    assert {"gradvac", "upgrad", "gradient-co-train"} == set(table["method"])
    assert (out / "cost_gain.png").stat().st_size > 1000
    assert pd.read_csv(out / "per_language_gains.csv", index_col=0).loc["qa", "gradvac"] == pytest.approx(4.5)
    # the shipped form: a CSV of the runs in place of their folders
    aggregators.load_surgeon_runs(runs_dir).to_csv(tmp_path / "runs.csv", index=False)
    assert aggregators.run_costs(aggregators.load_surgeon_runs(tmp_path / "runs.csv"), "ner", 5).loc[
        "upgrad", "extra_passes_per_step"] == pytest.approx(1.8)
