"""Power before the run: the smallest difference a grid can detect, and what it would take to see the paper's.

A comparison of a method with a baseline at one (task, K) is tested by `fslib.analysis.significance` on L target
languages x S runs; its estimate has Var(delta) = var_lang/L + var_seed/S + var_resid/(L*S) and its test has the
Satterthwaite degrees of freedom df of the expected mean squares (var_resid + S*var_lang on L-1 df, var_resid +
L*var_seed on S-1, var_resid on (L-1)(S-1)). The smallest effect detected with probability `power` by the
two-sided test at `alpha` is approximately (t_{1-alpha/2, df} + t_{power, df}) * sqrt(Var(delta)), and the
interval the test will report has the expected half-width t_{1-alpha/2, df} * sqrt(Var(delta)) (`half_width`:
what a grid promises about the precision of its verdicts, whatever the true effect).

The residual holds the test-set sampling noise of a paired per-language difference, modelled as
test_noise / n_test (points^2, n_test test sentences or examples per language), plus what a pilot measured beyond
it. Variance components come from:

- a pilot (`--pilot results.csv`): `compare_methods` on its rows for the same (task, K, method, baseline); its
  residual is assumed measured at the grid's own test-set size (an earlier run of the same grid), and the part of
  it above test_noise / n_test is kept when n_test changes;
- else defaults: var_seed = sd_method^2 + sd_baseline^2 from the paper's Table 1 (sd over five seeds of the
  language average; zero-shot has none), var_lang = the variance over languages of the per-language difference in
  the paper's appendix tables (POS has none there: the median over the tasks that have one), and var_resid =
  test_noise / n_test, with n_test the grid's `max_eval_examples` or the task's usual test-set size.

`fslib/analysis/power_defaults.csv` ships per task the usual test-set size (test_sentences, approximate: UD POS test
sets
vary from a few hundred to a few thousand sentences; PAN-X has 10000 per language) and test_noise: 117 for the
token tasks, from the real-POS grid (a per-language paired sd of about 2.7 points at 16 test sentences), and
guesses for TyDiQA and XNLI (a paired accuracy difference with about 10% disagreement: 1000 points^2 per example).
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
from scipy import stats

from fslib.core.languages import SOURCE_LANG, TASK_LANGUAGES

DEFAULTS_FILE = "power_defaults.csv"
BASELINES = ("ord-FS", "co-FT", "naive-co-train")
ZERO_SHOT = "zero-shot"
SEARCH_LIMITS = {"seeds": 100, "languages": 200, "test sentences": 1_000_000}


def load_defaults() -> pd.DataFrame:
    """fslib/analysis/power_defaults.csv indexed by task: test_sentences, test_noise."""
    with resources.files("fslib.analysis").joinpath(DEFAULTS_FILE).open() as handle:
        return pd.read_csv(handle).set_index("task")


def expected_df(var_lang: float, var_seed: float, var_resid: float, n_langs: int, n_seeds: int) -> float:
    """Satterthwaite degrees of freedom of (MS_lang + MS_seed - MS_resid) / (L*S) at the expected mean squares."""
    if n_seeds < 2:
        return float(n_langs - 1)
    if n_langs < 2:
        return float(n_seeds - 1)
    terms = [(var_resid + n_seeds * var_lang, n_langs - 1), (var_resid + n_langs * var_seed, n_seeds - 1),
             (-var_resid, (n_langs - 1) * (n_seeds - 1))]
    total = sum(value for value, _ in terms)
    return float(total ** 2 / sum(value ** 2 / df for value, df in terms)) if total > 0 else float("inf")


def detectable_effect(var_lang: float, var_seed: float, var_resid: float, n_langs: int, n_seeds: int,
                      power: float = 0.8, alpha: float = 0.05) -> float:
    """Smallest true difference (points) detected with probability `power` by the two-sided crossed test at
    `alpha` on n_langs x n_seeds (module docstring)."""
    if n_langs * n_seeds < 2:
        return float("inf")
    se = (var_lang / n_langs + var_seed / n_seeds + var_resid / (n_langs * n_seeds)) ** 0.5
    df = expected_df(var_lang, var_seed, var_resid, n_langs, n_seeds)
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)


def power_at(effect: float, var_lang: float, var_seed: float, var_resid: float, n_langs: int, n_seeds: int,
             alpha: float = 0.05) -> float:
    """Probability that the two-sided crossed test at `alpha` on n_langs x n_seeds rejects when the true difference
    is `effect` (noncentral t at the expected Satterthwaite degrees of freedom); NaN where the effect is unknown."""
    if np.isnan(effect) or n_langs * n_seeds < 2 or np.isnan(var_lang + var_seed + var_resid):
        return float("nan")
    var_lang, var_seed, var_resid = (max(value, 0.0) for value in (var_lang, var_seed, var_resid))
    se = (var_lang / n_langs + var_seed / n_seeds + var_resid / (n_langs * n_seeds)) ** 0.5
    df = expected_df(var_lang, var_seed, var_resid, n_langs, n_seeds)
    critical, shift = stats.t.ppf(1 - alpha / 2, df), abs(effect) / se if se > 0 else np.inf
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def expected_half_width(var_lang: float, var_seed: float, var_resid: float, n_langs: int, n_seeds: int,
                        level: float = 0.95) -> float:
    """Half-width (points) of the `level` interval the crossed test would report at these components: Student's t
    at the expected Satterthwaite degrees of freedom times the standard error of delta (module docstring)."""
    if n_langs * n_seeds < 2:
        return float("inf")
    se = (var_lang / n_langs + var_seed / n_seeds + var_resid / (n_langs * n_seeds)) ** 0.5
    df = expected_df(var_lang, var_seed, var_resid, n_langs, n_seeds)
    return float(stats.t.ppf(0.5 + level / 2, df) * se)


def paper_components(task: str, k: int, method: str, baseline: str) -> tuple[float, float, float]:
    """var_lang and var_seed of the paper's figures, and the paper's effect (Table 1 difference)."""
    from fslib.analysis.reference import load_reference, load_reference_table1

    table1 = load_reference_table1().set_index(["task", "k", "method"])

    def cell(name: str, field: str) -> float:
        key = (task, 0 if name == ZERO_SHOT else k, name)
        return float(table1.at[key, field]) if key in table1.index else np.nan

    var_seed = float(np.nansum([cell(method, "sd") ** 2, cell(baseline, "sd") ** 2]))
    effect = cell(method, "mean") - cell(baseline, "mean")
    per_language = load_reference()

    def spread(each_task: str) -> float:
        rows = per_language[per_language["task"] == each_task]
        scores = {name: rows[(rows["method"] == name) & (rows["k"] == (0 if name == ZERO_SHOT else k))]
                  .groupby("lang")["value"].mean() for name in (method, baseline)}
        differences = (scores[method] - scores[baseline]).dropna()
        return float(differences.var(ddof=1)) if len(differences) > 1 else np.nan

    var_lang = spread(task)
    if np.isnan(var_lang):
        spreads = [value for other in sorted(set(per_language["task"])) if not np.isnan(value := spread(other))]
        var_lang = float(np.median(spreads)) if spreads else np.nan
    return (0.0 if np.isnan(var_lang) else var_lang), var_seed, effect


def grid_comparisons(configs) -> pd.DataFrame:
    """The comparisons a grid can make: each method against each baseline of BASELINES it also runs, per (task,
    K), with the target languages and seeds both have and the test-set size (max_eval_examples, NaN for all)."""
    cells: dict[tuple, dict] = {}
    for config in configs:
        label = config.method_label or config.method
        langs = config.languages or list(TASK_LANGUAGES.get(config.task, ()))
        cell = cells.setdefault((config.task, config.k, label), {"langs": set(), "seeds": set(), "n_test": set()})
        cell["langs"] |= set(langs) - {SOURCE_LANG}
        cell["seeds"].add(config.seed)
        cell["n_test"].add(config.max_eval_examples)
    rows = []
    for (task, k, method), cell in sorted(cells.items(), key=lambda item: (item[0][0], item[0][1], item[0][2])):
        for baseline in BASELINES:
            other = cells.get((task, k, baseline))
            if method in (baseline, ZERO_SHOT) or other is None or k == 0:
                continue
            n_test = max((n for n in cell["n_test"] | other["n_test"] if n is not None), default=np.nan)
            rows.append({"task": task, "k": k, "method": method, "baseline": baseline,
                         "n_langs": len(cell["langs"] & other["langs"]),
                         "n_seeds": len(cell["seeds"] & other["seeds"]), "n_test": n_test})
    return pd.DataFrame(rows, columns=["task", "k", "method", "baseline", "n_langs", "n_seeds", "n_test"])


def _smallest(reaches, limit: int) -> int | None:
    """Smallest n in [1, limit] with reaches(n) (reaches is monotone), by doubling then bisection."""
    high = 1
    while not reaches(high):
        if high >= limit:
            return None
        high = min(2 * high, limit)
    low = high // 2  # 0, or a value that did not reach
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    return high


def power_table(configs, pilot: pd.DataFrame | None = None, power: float = 0.8, alpha: float = 0.05) -> pd.DataFrame:
    """Per comparison of the grid: the variance components used (source: pilot or paper), the detectable effect
    at `power` and `alpha`, the paper's effect, and the seeds, languages or test sentences per language that would
    detect it (others as in the grid; None where even the search limit would not)."""
    from fslib.analysis.tables import compare_methods

    defaults = load_defaults()
    out = []
    for row in grid_comparisons(configs).itertuples(index=False):
        noise = float(defaults.at[row.task, "test_noise"]) if row.task in defaults.index else 0.0
        n_test = row.n_test if not np.isnan(row.n_test) else float(defaults.at[row.task, "test_sentences"])
        var_lang, var_seed, effect = paper_components(row.task, row.k, row.method, row.baseline)
        var_other, source = 0.0, "paper"
        if pilot is not None:
            measured = compare_methods(pilot, row.task, row.k, row.method, row.baseline) \
                if ((pilot["task"] == row.task) & (pilot["method"] == row.method)).any() else pd.DataFrame()
            if len(measured) and measured["n_langs"].iloc[0] > 0:
                found = measured.iloc[0][["var_lang", "var_seed", "var_resid"]].astype(float).fillna(0.0)
                var_lang, var_seed = float(found["var_lang"]), float(found["var_seed"])
                var_other, source = max(float(found["var_resid"]) - noise / n_test, 0.0), "pilot"

        def effect_at(langs=row.n_langs, seeds=row.n_seeds, sentences=n_test):
            return detectable_effect(var_lang, var_seed, var_other + noise / sentences, langs, seeds, power, alpha)

        target = abs(effect) if effect == effect and effect != 0 else np.nan
        needed = {name: (None if np.isnan(target) else _smallest(lambda n, name=name: effect_at(
            **{{"seeds": "seeds", "languages": "langs", "test sentences": "sentences"}[name]: n}) <= target, limit))
            for name, limit in SEARCH_LIMITS.items()}
        out.append({**row._asdict(), "n_test": int(n_test), "source": source, "var_lang": var_lang,
                    "var_seed": var_seed, "var_resid": var_other + noise / n_test, "detectable": effect_at(),
                    "half_width": expected_half_width(var_lang, var_seed, var_other + noise / n_test, row.n_langs,
                                                      row.n_seeds, 1 - alpha),
                    "paper_effect": effect, "seeds_needed": needed["seeds"], "languages_needed": needed["languages"],
                    "test_sentences_needed": needed["test sentences"]})
    return pd.DataFrame(out)


def power_report(configs, pilot: str | None = None, power: float = 0.8, alpha: float = 0.05) -> str:
    """What `fslib batch FILE --dry-run [--pilot results.csv]` prints: `power_table` as text."""
    from fslib.store.results import load_results

    table = power_table(configs, load_results(pilot) if pilot else None, power, alpha)
    if table.empty:
        return "power: no comparison with ord-FS, co-FT or naive-co-train in this grid"
    shown = table.assign(
        comparison=table["method"] + " vs " + table["baseline"],
        grid=table["n_langs"].astype(str) + " x " + table["n_seeds"].astype(str) + ", " + table["n_test"].astype(str),
        **{"needed (seeds / langs / test sents)": [" / ".join("-" if v is None or v != v else str(int(v))
                                                               for v in values) for values in
                                                    zip(table["seeds_needed"], table["languages_needed"],
                                                        table["test_sentences_needed"])]})
    columns = ["task", "k", "comparison", "grid", "source", "var_lang", "var_seed", "var_resid", "half_width",
               "detectable",
               "paper_effect", "needed (seeds / langs / test sents)"]
    return (f"power: half_width = the expected half-width of the {1 - alpha:.0%} interval; detectable = the smallest "
            f"difference detected {power:.0%} of the time at alpha {alpha} (two-sided, languages x runs crossed; grid "
            "= target languages x seeds, test sentences per language), and what would detect the "
            "paper's effect with the rest of the grid unchanged ('-': not within "
            f"{SEARCH_LIMITS['seeds']} seeds / {SEARCH_LIMITS['languages']} languages / "
            f"{SEARCH_LIMITS['test sentences']} sentences)\n"
            + shown[columns].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
