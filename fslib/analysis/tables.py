"""Tables of the analyses (docs/protocol.md): Table 1, the per-language tables, the language benefit (Tables 2 and 8)
and the script study (Tables 9 and 10).

Every function takes result rows (`fslib.store.results.load_results`) or the paper's figures
(`fslib.analysis.reference.load_reference()`, converted on the fly to one seed on the test split), and scores each task
on its headline metric (`fslib.core.tasks.get_task(task).metric`) of the test split. The overfitting curves
(Figures 3 and 5) live in `fslib.analysis.curves` and the gradient-similarity heatmaps (Figure 1) in
`fslib.analysis.similarity`;
their public functions are re-exported here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fslib.analysis.curves import (  # noqa: F401
    best_dev_epochs,
    dev_curves,
    selection_curves,
    share_best_at_first_epoch,
)
from fslib.analysis.reference import ensure_result_rows, load_reference_table1
from fslib.analysis.significance import COMPARISON_COLUMNS, compare_pair, holm
from fslib.analysis.similarity import conflict_share, load_gradient_similarity, similarity_matrix  # noqa: F401
from fslib.core.containment import files_named, member
from fslib.core.languages import SOURCE_LANG, TASK_LANGUAGES, language
from fslib.core.tasks import TASKS, get_task
from fslib.store.config import NOT_HASHED
from fslib.store.provenance import engine_note, signature  # noqa: F401  (signature: printed under every table)
from fslib.store.results import CONFIG_FILE, RESULTS_FILE, load_results

__all__ = [
    "COLOUR_CLASSES", "METHOD_ORDER", "SCRIPT_METHODS", "ZERO_SHOT",
    "headline_test_rows", "main_table", "main_table_wide", "main_table_vs_paper", "per_language_table",
    "side_by_side",
    "colour_class", "language_colour_classes", "main_colour_classes", "best_per_language", "best_per_k",
    "language_benefit", "benefit_extremes", "script_study_table",
    "missing_methods", "load_report_results", "separate_variants", "short_model_name", "signature", "choose_metrics",
    "compare_methods", "main_comparisons", "SIGNIFICANCE_BASELINES",
    # from fslib.analysis.curves and fslib.analysis.similarity
    "dev_curves", "best_dev_epochs", "share_best_at_first_epoch", "selection_curves",
    "load_gradient_similarity", "similarity_matrix", "conflict_share",
]

ZERO_SHOT = "zero-shot"
# Row order of the paper's tables; other labels (the script study's) come after, alphabetically.
METHOD_ORDER = ("zero-shot", "ord-FS+dev", "ord-FS", "co-FT", "naive-co-train", "gradient-co-train")
SCRIPT_METHODS = ("ord-FS", "gradient-single", "gradient-subset", "gradient-all")
# Colour classes of a score relative to zero-shot, as in the legend of the paper's Table 1.
COLOUR_CLASSES = ("+3 or more", "+0 to +3", "-0 to -3", "-3 or more")


def method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)


def sorted_methods(methods) -> list[str]:
    return sorted(set(methods), key=method_rank)


def headline_test_rows(results: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Test-split rows on each task's headline metric (of one task if given), zero-shot placed at k=0."""
    rows = ensure_result_rows(results)
    rows = rows[rows["split"] == "test"]
    if task is not None:
        rows = rows[rows["task"] == task]
    headline = rows["task"].map(lambda name: get_task(name).metric)
    rows = rows[rows["metric"] == headline].copy()
    rows.loc[rows["method"] == ZERO_SHOT, "k"] = 0
    return rows


def choose_metrics(results: pd.DataFrame, metrics: dict[str, str] | None) -> pd.DataFrame:
    """`results` with each task of `metrics` scored on the metric given (e.g. {"pos": "token_accuracy"}, POS's
    second row beside seqeval F1) instead of its headline metric: that metric's rows are renamed to the headline's
    name and the headline's rows dropped, so every table uses it. A metric the task's rows lack is an error naming
    those they have."""
    if not metrics:
        return results
    results = results.copy()
    for task, metric in metrics.items():
        rows = results["task"] == task
        present = sorted(set(results.loc[rows, "metric"]))
        if metric not in present:
            raise ValueError(f"metrics: {task} has no {metric!r} rows; its metrics here: {', '.join(present)}")
        headline = get_task(task).metric
        results = results[~(rows & (results["metric"] == headline))]
        results.loc[(results["task"] == task) & (results["metric"] == metric), "metric"] = headline
    return results


# ---- Table 1 --------------------------------------------------------------------------------------------------
def main_table(results: pd.DataFrame, include_source: bool = True) -> pd.DataFrame:
    """Table 1: indexed by (task, k, method), columns `mean` and `sd`. Per (task, k, method, seed) the test scores
    (headline metric) are averaged over languages, the source language included when `include_source` (as the
    paper's Table 1 is), then `mean` and the sample standard deviation `sd` (ddof=1; NaN with one seed) are
    taken over seeds. Zero-shot sits at k=0."""
    rows = headline_test_rows(results)
    if not include_source:
        rows = rows[rows["lang"] != SOURCE_LANG]
    per_seed = rows.groupby(["task", "k", "method", "seed"])["value"].mean()
    table = per_seed.groupby(["task", "k", "method"]).agg(mean="mean", sd="std")
    order = sorted(table.index, key=lambda key: (_task_rank(key[0]), key[1], method_rank(key[2])))
    return table.loc[order]


def _task_rank(task: str) -> tuple[int, str]:
    names = list(TASKS)
    return (names.index(task), "") if task in names else (len(names), task)


def main_table_wide(main: pd.DataFrame, stat: str = "mean") -> pd.DataFrame:
    """One statistic of `main_table` laid out as the paper's Table 1: rows (k, method), one column per task."""
    wide = main[stat].unstack("task")
    wide = wide[sorted(wide.columns, key=_task_rank)]
    return wide.loc[sorted(wide.index, key=lambda key: (key[0], method_rank(key[1])))]


def main_table_vs_paper(main: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """`main_table` beside the paper's Table 1: columns mean, sd, paper_mean, paper_sd, diff (mean - paper)."""
    paper = load_reference_table1() if paper is None else paper
    paper = paper.set_index(["task", "k", "method"])[["mean", "sd"]].add_prefix("paper_")
    joined = main.join(paper, how="left")
    joined["diff"] = joined["mean"] - joined["paper_mean"]
    return joined


# ---- per-language tables (Tables 4-7) ---------------------------------------------------------------------------
def per_language_table(results: pd.DataFrame, task: str, k: int, methods=None, with_zero_shot: bool = True,
                       langs=None) -> pd.DataFrame:
    """Languages x methods at one K: the test score (headline metric) averaged over seeds; a zero-shot column
    (its k=0 runs) comes first when `with_zero_shot`. Languages follow the task's list unless `langs` is given."""
    rows = headline_test_rows(results, task)
    chosen = rows["k"] == k
    if with_zero_shot:
        chosen |= rows["method"] == ZERO_SHOT
    rows = rows[chosen]
    if methods is not None:
        rows = rows[rows["method"].isin(set(methods) | ({ZERO_SHOT} if with_zero_shot else set()))]
    table = rows.groupby(["lang", "method"])["value"].mean().unstack("method")
    columns = sorted_methods(table.columns) if methods is None else \
        [m for m in ([ZERO_SHOT] if with_zero_shot else []) + [m for m in methods if m != ZERO_SHOT]
         if m in table.columns]
    order = list(langs) if langs is not None else _language_order(task, table.index)
    table = table.reindex(index=order, columns=columns)
    table.columns.name = "method"
    table.index.name = "lang"
    return table


def _language_order(task: str, present) -> list[str]:
    known = [lang for lang in TASK_LANGUAGES.get(task, ()) if lang in set(present)]
    return known + sorted(set(present) - set(known))


def side_by_side(kit: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Two tables of the same layout (e.g. `per_language_table` of runs and of the reference figures) joined
    under the column keys kit, paper and diff (kit - paper), aligned on both axes."""
    kit, paper = kit.align(paper, join="left")
    return pd.concat({"kit": kit, "paper": paper, "diff": kit - paper}, axis=1)


# ---- colours and bold ----------------------------------------------------------------------------------------
def colour_class(delta: float) -> str | None:
    """Class of a difference to zero-shot (points), following Table 1's legend: '+3 or more' (>= 3),
    '+0 to +3' ([0, 3)), '-0 to -3' ((-3, 0)), '-3 or more' (<= -3); None for a missing value."""
    if delta is None or pd.isna(delta):
        return None
    if delta >= 3:
        return COLOUR_CLASSES[0]
    if delta >= 0:
        return COLOUR_CLASSES[1]
    if delta > -3:
        return COLOUR_CLASSES[2]
    return COLOUR_CLASSES[3]


def language_colour_classes(table: pd.DataFrame) -> pd.DataFrame:
    """Colour class of each cell of a `per_language_table` relative to its zero-shot column (missing
    there and where a score is missing)."""
    if ZERO_SHOT not in table.columns:  # nothing to colour against
        return pd.DataFrame(None, index=table.index, columns=table.columns)
    deltas = table.sub(table[ZERO_SHOT], axis=0)
    classes = deltas.map(colour_class)
    classes[ZERO_SHOT] = None
    return classes


def main_colour_classes(wide: pd.DataFrame) -> pd.DataFrame:
    """Colour class of each cell of `main_table_wide` relative to the (0, zero-shot) row
    (missing on that row and where a score is missing)."""
    if (0, ZERO_SHOT) not in wide.index:  # a grid without zero-shot: nothing to colour against
        return pd.DataFrame(None, index=wide.index, columns=wide.columns)
    baseline = wide.loc[(0, ZERO_SHOT)]
    classes = (wide - baseline).map(colour_class)
    classes.loc[(0, ZERO_SHOT)] = None
    return classes


def best_per_language(table: pd.DataFrame) -> pd.DataFrame:
    """Boolean mask of a `per_language_table`: the best few-shot method of each language (ties all marked;
    zero-shot never)."""
    few_shot = table.drop(columns=[ZERO_SHOT], errors="ignore")
    mask = few_shot.eq(few_shot.max(axis=1), axis=0) & few_shot.notna()
    return mask.reindex(columns=table.columns, fill_value=False)


def best_per_k(wide: pd.DataFrame) -> pd.DataFrame:
    """Boolean mask of `main_table_wide`: the best method of each task within each K >= 1 (ties all marked)."""
    best = wide.groupby(level="k").transform("max")
    mask = wide.eq(best) & wide.notna()
    mask.loc[wide.index.get_level_values("k") == 0] = False
    return mask


# ---- Tables 2 and 8 ----------------------------------------------------------------------------------------
def language_benefit(results: pd.DataFrame, task: str, k: int, method: str = "gradient-co-train",
                     baseline: str = "ord-FS", source_lang: str = SOURCE_LANG) -> pd.DataFrame:
    """Tables 2 and 8: per target language, `delta` = mean over seeds of `method` minus mean over seeds of
    `baseline` (test split, headline metric, at K=k), sorted by `delta` descending, the source language left
    out. Columns: lang, delta, then method_mean, baseline_mean, name, script and family. Languages scored by
    only one of the two methods are left out."""
    rows = headline_test_rows(results, task)
    frame = pd.DataFrame({"method_mean": _language_means(rows, method, k),
                          "baseline_mean": _language_means(rows, baseline, k)}).dropna()
    frame = frame[frame.index != source_lang]
    frame["delta"] = frame["method_mean"] - frame["baseline_mean"]
    frame.index.name = "lang"
    frame = frame.reset_index().sort_values("lang").sort_values("delta", ascending=False, kind="stable")
    for field in ("name", "script", "family"):
        frame[field] = frame["lang"].map(lambda code, field=field: getattr(language(code), field))
    return frame[["lang", "delta", "method_mean", "baseline_mean", "name", "script", "family"]].reset_index(drop=True)


def _language_means(rows: pd.DataFrame, method: str, k: int) -> pd.Series:
    """Per language, the mean over seeds of one method at K=k (zero-shot: its k=0 runs)."""
    chosen = rows[(rows["method"] == method) & (rows["k"] == (0 if method == ZERO_SHOT else k))]
    return chosen.groupby("lang")["value"].mean()


def benefit_extremes(benefit: pd.DataFrame, n: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The n languages that gain most (largest first, Table 2) and the n that gain least (smallest first,
    Table 8) of a `language_benefit` table."""
    return benefit.head(n).reset_index(drop=True), \
        benefit.tail(n).iloc[::-1].reset_index(drop=True)


# ---- significance ---------------------------------------------------------------------------------------------
SIGNIFICANCE_BASELINES = ("ord-FS", "naive-co-train")


def compare_methods(results: pd.DataFrame, task: str | None = None, k: int | None = None,
                    method: str = "gradient-co-train", baseline: str = "ord-FS", seed: int = 0) -> pd.DataFrame:
    """`method` against `baseline` on the test split (headline metric), one row per (task, K) - just one when
    both are given. Columns: task, k, method, baseline, delta (mean over target languages of the per-language
    difference of means over seeds; the source language left out), ci_low, ci_high (95% t interval) and p_value
    (two-sided) from the crossed languages x runs scheme of `fslib.analysis.significance` (a run's luck is shared by all
    its
    languages; runs of the same seed are paired), n_langs, n_seeds, and the variance components it estimated
    (var_lang, var_seed, var_resid, in squared points) with its Satterthwaite df. Zero-shot as a baseline is read
    at k=0."""
    rows = headline_test_rows(results, task)
    tasks = [task] if task is not None else sorted(rows["task"].unique(), key=_task_rank)
    out = []
    for each_task in tasks:
        task_rows = rows[rows["task"] == each_task]
        method_rows = task_rows[task_rows["method"] == method]
        if method_rows.empty and task is not None:
            raise ValueError(f"no test results of method {method!r} for task {each_task!r}; methods there: "
                             f"{', '.join(sorted_methods(task_rows['method'])) or 'none'}")
        ks = [k] if k is not None else sorted(set(method_rows["k"]) - ({0} if method != ZERO_SHOT else set()))
        for each_k in ks:
            at = (lambda name: task_rows[(task_rows["method"] == name) &
                                         (task_rows["k"] == (0 if name == ZERO_SHOT else each_k))])
            out.append({"task": each_task, "k": each_k, "method": method, "baseline": baseline,
                        **compare_pair(at(method), at(baseline), seed=seed)})
    return pd.DataFrame(out, columns=COMPARISON_COLUMNS)


def main_comparisons(results: pd.DataFrame, baselines=SIGNIFICANCE_BASELINES, alpha: float = 0.05,
                     seed: int = 0) -> pd.DataFrame:
    """Every method against each baseline at every (task, K) it ran (`compare_methods` rows), zero-shot and the
    baselines themselves excluded as methods, plus `p_holm` (Holm-Bonferroni over all the table's tests) and
    `significant` (p_holm < alpha)."""
    rows = headline_test_rows(results)
    methods = [m for m in sorted_methods(rows["method"]) if m != ZERO_SHOT]
    frames = [compare_methods(results, method=method, baseline=baseline, seed=seed)
              for baseline in baselines if baseline in set(rows["method"])
              for method in methods if method != baseline]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COMPARISON_COLUMNS)
    table = table[table["n_langs"] > 0].reset_index(drop=True)
    table["p_holm"] = holm(table["p_value"])
    table["significant"] = table["p_holm"] < alpha
    order = sorted(table.index, key=lambda i: (_task_rank(table.at[i, "task"]), table.at[i, "k"],
                                               method_rank(table.at[i, "baseline"]),
                                               method_rank(table.at[i, "method"])))
    return table.loc[order].reset_index(drop=True)


# ---- Tables 9 and 10 ------------------------------------------------------------------------------------------
def script_study_table(results: pd.DataFrame, task: str, k: int = 5, langs=None,
                       methods=SCRIPT_METHODS) -> pd.DataFrame:
    """Tables 9 and 10: methods (rows: ord-FS, gradient-single, gradient-subset, gradient-all) x languages, test
    score averaged over seeds. gradient-all is read from `gradient-all` rows, or from `gradient-co-train` rows
    when there are none. Languages: `langs`, or those with gradient-single (else gradient-subset) scores in
    the order of the rows (the paper's order for its Tables 9 and 10)."""
    rows = headline_test_rows(results, task)
    rows = rows[(rows["k"] == k) & (rows["lang"] != SOURCE_LANG)]
    if "gradient-all" in methods and not (rows["method"] == "gradient-all").any():
        rows = rows.assign(method=rows["method"].replace({"gradient-co-train": "gradient-all"}))
    table = rows[rows["method"].isin(methods)].groupby(["method", "lang"])["value"].mean().unstack("lang")
    if langs is None:
        for label in ("gradient-single", "gradient-subset", *methods):
            if label in table.index:
                scored = set(table.loc[label].dropna().index)
                langs = [lang for lang in pd.unique(rows["lang"]) if lang in scored]
                break
        else:
            langs = []
    table = table.reindex(index=list(methods), columns=list(langs))
    table.index.name, table.columns.name = "method", "lang"
    return table


# ---- what the reports are given -------------------------------------------------------------------------------
def missing_methods(results: pd.DataFrame, methods, task: str | None = None, k: int | None = None) -> list[str]:
    """The methods of `methods` that have no test rows (of `task`, at K=`k`; zero-shot read at k=0): what an
    analysis comparing them has to do without. A method split by `separate_variants` counts as present."""
    rows = headline_test_rows(results, task)
    base = rows["method"].str.split(" [", n=1, regex=False).str[0]  # a method kept apart per configuration
    present = {method for method, at in zip(base, rows["k"]) if k is None or at == (0 if method == ZERO_SHOT else k)}
    return [method for method in methods if method not in present]


def short_model_name(model) -> str:
    """A model as reports label it: the last part of a local path or hub id ("xlm-roberta-large" for
    "FacebookAI/xlm-roberta-large"), shorter than the result rows' own `model` (fslib.store.config.model_name, which
    keeps a hub id whole, since two organisations may publish models of the same name)."""
    return Path(str(model)).name or str(model)


# Config fields that never tell two runs of a grid apart as results: where and how fast a run goes (the fields
# left out of the config hash) and its seed.
_NOT_A_VARIANT = {"seed", *NOT_HASHED}


def unreadable_results(files: list[Path]) -> dict[Path, str]:
    """The results files among `files` that cannot be read, each with the problem (naming the file)."""
    problems = {}
    for file in files:
        try:
            load_results(file)
        except ValueError as error:
            problems[file] = _problem(error)
    return problems


def _problem(error: ValueError) -> str:
    """The problem of one file as load_results names it (its last line: "<file>: what is wrong")."""
    return str(error).strip().splitlines()[-1].strip()


def load_report_results(path: Path | str, model: str | None = None,
                        separate: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """The rows under `path` as the reports use them, and notes saying what the results mix. Every row gets a
    `model` (its own column, else its run's config.json); with `model`, only that model's rows. Runs of the
    same (task, method, K, seed) that differ in their configuration (an ablation, two grids in one folder) are
    kept apart by `separate_variants` instead of being averaged; with `separate=False` the rows are left as
    they are and the notes say, per model, what each model's reports will keep apart. A results file that
    cannot be read is left out, and a note names it and why (`unreadable_results` lists them all). A note warns
    when the rows come from several engine versions (fslib.store.provenance.engine_note)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(files_named(path, RESULTS_FILE))
    frames, configs, unreadable = [], {}, {}
    for file in files:
        try:
            rows = load_results(file)
        except ValueError as error:
            unreadable[file] = _problem(error)
            continue
        config_file = member(file.parent, CONFIG_FILE)
        config = json.loads(config_file.read_text()) if config_file and config_file.exists() else {}
        for run_id in rows["run_id"].unique():
            configs[run_id] = config
        frames.append(rows)
    results = pd.concat(frames, ignore_index=True) if frames else load_results(path).assign(model=None)
    models = sorted(set(results["model"].dropna().map(str)))
    if model is not None:
        results, models = results[results["model"].map(str) == str(model)], [str(model)]
    notes = [f"left out, unreadable: {problem}" for problem in unreadable.values()]
    mixed_engines = engine_note(results)
    if mixed_engines:
        notes.append(mixed_engines)
    if len(models) > 1:
        notes.append(f"{len(models)} models in these results ({', '.join(short_model_name(m) for m in models)}): "
                     "their rows are kept apart, never averaged together")
    if separate:
        results, variant_notes = separate_variants(results, configs)
        return results, notes + variant_notes
    for each in models:
        _, variant_notes = separate_variants(results[results["model"].map(str) == each], configs)
        notes += [f"{short_model_name(each)}: {note}" if len(models) > 1 else note for note in variant_notes]
    return results, notes


def separate_variants(results: pd.DataFrame, configs: dict[str, dict] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Where several runs share a (task, method, K, seed) (an ablation of alpha, two models, two grids writing
    to one folder), rename the method of each such run to `method [field=value, ...]`, naming the config
    fields in which those runs differ (from `configs`, run_id -> config.json; `run <id>` without one), so that
    every table shows them as rows of their own. Returns the rows and a note per (task, method, K) split."""
    configs = configs or {}
    keys = ["task", "method", "k", "seed"]
    runs = results[keys + ["run_id"]].drop_duplicates()
    counts = runs.groupby(keys)["run_id"].nunique()
    mixed = {key[:3] for key in counts[counts > 1].index}
    if not mixed:
        return results, []
    results, notes = results.copy(), []
    for task, method, k in sorted(mixed, key=lambda key: (str(key[0]), key[2], method_rank(key[1]))):
        chosen = (results["task"] == task) & (results["method"] == method) & (results["k"] == k)
        ids = list(pd.unique(results.loc[chosen, "run_id"]))
        compared = {run_id: {key: value for key, value in configs.get(run_id, {}).items()
                             if key not in _NOT_A_VARIANT} for run_id in ids}
        fields = sorted({field for config in compared.values() for field in config
                         if len({json.dumps(other.get(field), sort_keys=True) for other in compared.values()}) > 1})
        labels = {run_id: ", ".join(f"{field}={_short(compared[run_id].get(field))}" for field in fields)
                  if fields else f"run {run_id}" for run_id in ids}
        results.loc[chosen, "method"] = results.loc[chosen, "run_id"].map(lambda run_id: f"{method} [{labels[run_id]}]")
        shown = sorted(set(labels.values()))
        notes.append(f"{task} {method} K={k}: {len(shown)} configurations in the results ({'; '.join(shown)}), "
                     "shown as separate rows instead of averaged")
    return results, notes


def _short(value) -> str:
    if isinstance(value, str) and ("/" in value or "\\" in value):
        value = short_model_name(value)
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
