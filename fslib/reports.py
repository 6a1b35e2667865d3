"""The reports of a batch: the analysis notebooks executed on the runs' results into `outputs/reports/`, each also
exported to HTML, and an `index.html` linking them. Which analyses run follows from the results present (a
language-benefit report per task that has gradient-co-train and ord-FS, a heatmap where gradient similarities
were recorded, ...). Reports are rebuilt only when some run's results changed."""

from __future__ import annotations

import hashlib
import html
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from fslib.execution import execute_notebook
from fslib.files import write_atomic
from fslib.results import RESULTS_FILE, load_results
from fslib.similarity import SIMILARITY_FILE
from fslib.tracking import LOSS_FIGURE

DESCRIPTIONS = {
    "main_results": "Table 1 and the per-language tables, beside the paper's figures",
    "language_benefit": "Δ per target language, gradient-co-train − ord-FS (Tables 2 and 8)",
    "gradient_heatmap": "cosine similarity of per-language gradients (Figure 1)",
    "script_study": "single language, same-script subsets, all languages (Figure 2)",
    "overfitting_curves": "dev scores per epoch of ord-FS+dev, and selection rules over epochs (Figures 3 and 5)",
}


def _preferred_k(ks) -> int:
    ks = sorted(set(ks) - {0})
    return 5 if 5 in ks else ks[-1]


def analyses(results: pd.DataFrame, runs_dir: Path) -> list[tuple[str, str, dict]]:
    """(report name, notebook, parameters) for every analysis the results support."""
    test = results[results["split"] == "test"]
    if test.empty:
        return []
    jobs = [("main_results", "main_results", {})]
    similarity_tasks = {path.relative_to(runs_dir).parts[0] for path in runs_dir.rglob(SIMILARITY_FILE)}
    for task in sorted(test["task"].unique()):
        rows = test[test["task"] == task]
        methods = set(rows["method"])
        if {"gradient-co-train", "ord-FS"} <= methods:
            k = _preferred_k(rows[rows["method"] == "gradient-co-train"]["k"])
            jobs.append((f"language_benefit_{task}", "language_benefit", {"task": task, "k": k}))
        if task in similarity_tasks:
            jobs.append((f"gradient_heatmap_{task}", "gradient_heatmap", {"task": task, "k": _preferred_k(rows["k"])}))
        if methods & {"gradient-single", "gradient-subset"}:
            k = _preferred_k(rows[rows["method"].isin(["gradient-single", "gradient-subset"])]["k"])
            jobs.append((f"script_study_{task}", "script_study", {"task": task, "k": k}))
        curves = results[(results["task"] == task) & (results["method"] == "ord-FS+dev") & (results["split"] == "dev")]
        if not curves.empty:
            jobs.append((f"overfitting_curves_{task}", "overfitting_curves", {"task": task, "k": _preferred_k(curves["k"])}))
    return jobs


def _results_fingerprint(runs_dir: Path) -> str:
    stamps = [f"{path}:{path.stat().st_mtime_ns}" for path in sorted(runs_dir.rglob(RESULTS_FILE))]
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()


def _execute(name: str, notebook: str, parameters: dict, runs_dir: Path, reports_dir: Path) -> tuple[str, str | None]:
    from nbconvert import HTMLExporter

    folder = reports_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    executed = folder / f"{name}.ipynb"
    try:
        execute_notebook(notebook, executed, {"results_path": str(runs_dir), "output_dir": str(folder), **parameters})
        error = None
    except Exception as failure:  # the executed notebook keeps the error; the index says so
        error = f"{type(failure).__name__}: {str(failure)[-500:]}"
    if executed.exists():
        try:
            body, _ = HTMLExporter().from_filename(str(executed))
            (reports_dir / f"{name}.html").write_text(body)
        except Exception as failure:
            error = error or f"HTML export: {type(failure).__name__}: {failure}"
    return name, error


def build_reports(output_dir: Path, jobs: int = 1, force: bool = False) -> Path:
    """Execute the analyses of the results under `output_dir/runs` into `output_dir/reports`; returns the
    index. Skipped when the results did not change since the last build (unless `force`)."""
    runs_dir, reports_dir = Path(output_dir) / "runs", Path(output_dir) / "reports"
    index, stamp = reports_dir / "index.html", reports_dir / ".results-fingerprint"
    fingerprint = _results_fingerprint(runs_dir)
    if not force and index.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return index
    reports_dir.mkdir(parents=True, exist_ok=True)
    jobs_list = analyses(load_results(runs_dir), runs_dir)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = [pool.submit(_execute, name, notebook, parameters, runs_dir, reports_dir)
                   for name, notebook, parameters in jobs_list]
        outcomes = dict(future.result() for future in tqdm(futures, desc="reports", unit="notebook"))
    write_index(index, jobs_list, outcomes)
    stamp.write_text(fingerprint)
    return index


def write_index(index: Path, jobs: list[tuple[str, str, dict]], errors: dict[str, str | None]) -> None:
    """The page to read first: when and with what the reports were built, the headline table (Table 1 and the
    differences to ord-FS and naive-co-train with their significance), a thumbnail of every figure linking to
    it, and every report with its notebook (HTML and .ipynb), tables and status."""
    reports_dir = index.parent
    sections = [_provenance(), _headline(reports_dir), _thumbnails(reports_dir, jobs),
                _report_list(reports_dir, jobs, errors), _loss_curves(reports_dir)]
    page = ("<!doctype html><meta charset='utf-8'><title>fsxl reports</title>"
            f"<style>{INDEX_CSS}</style><h1>fsxl reports</h1>" + "".join(sections) + "\n")
    write_atomic(index, lambda temporary: Path(temporary).write_text(page))


INDEX_CSS = ("body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px}"
             ".thumbs{display:flex;flex-wrap:wrap;gap:12px}.thumbs figure{margin:0;width:230px}"
             ".thumbs img{width:230px;border:1px solid #ddd}.thumbs figcaption{font-size:80%}"
             ".meta{color:#555}")


def _provenance() -> str:
    """The kit's version, its git commit (with '+changes' when the working tree differs) and the build time."""
    import subprocess
    from datetime import datetime, timezone

    from fslib import __version__

    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        commit += " +changes" if dirty else ""
    except (OSError, subprocess.SubprocessError):
        commit = "unknown (not a git checkout)"
    built = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<p class='meta'>fslib {html.escape(__version__)} · commit {html.escape(commit)} · "
            f"built {built}</p>")


def _headline(reports_dir: Path) -> str:
    """Table 1 (mean ± sd, coloured against zero-shot) and the significance table, from main_results' CSVs."""
    from fslib.plots import style_comparisons, style_main_table

    folder = reports_dir / "main_results"
    parts = []
    if (folder / "main_results.csv").exists():
        main = pd.read_csv(folder / "main_results.csv").set_index(["task", "k", "method"])
        parts.append("<h2>Headline: Table 1</h2><p>Mean ± sd over seeds of the average over languages (source "
                     "included, as the paper averages); coloured by the difference to zero-shot, best in bold.</p>"
                     + style_main_table(main).to_html())
    if (folder / "significance.csv").exists():
        comparisons = pd.read_csv(folder / "significance.csv")
        if not comparisons.empty:
            parts.append("<h2>Differences to ord-FS and naive-co-train</h2><p>Δ over target languages with a 95% "
                         "bootstrap interval; p from a paired sign-flip test over languages, Holm-corrected "
                         "over the table; * and bold: significant at 0.05 after the correction.</p>"
                         + style_comparisons(comparisons).to_html())
    return "".join(parts) or "<p>No headline table yet (no test results).</p>"


def _thumbnails(reports_dir: Path, jobs: list[tuple[str, str, dict]]) -> str:
    figures = [(name, path) for name, _, _ in jobs for path in sorted((reports_dir / name).glob("*.png"))]
    if not figures:
        return ""
    items = "".join(f'<figure><a href="{name}/{path.name}"><img src="{name}/{path.name}" loading="lazy" '
                    f'alt="{html.escape(path.stem)}"></a><figcaption><a href="{name}.html">{html.escape(name)}</a>: '
                    f"{html.escape(path.stem)}</figcaption></figure>" for name, path in figures)
    return f"<h2>Figures</h2><div class='thumbs'>{items}</div>"


def _report_list(reports_dir: Path, jobs: list[tuple[str, str, dict]], errors: dict[str, str | None]) -> str:
    items = []
    for name, notebook, parameters in jobs:
        files = sorted((reports_dir / name).glob("*.[cp][sn][vg]"))  # .csv and .png
        links = " · ".join(f'<a href="{name}/{f.name}">{html.escape(f.name)}</a>' for f in files)
        setting = ", ".join(f"{key}={value}" for key, value in parameters.items())
        status = f' <b style="color:#b00">failed: {html.escape(errors[name])}</b>' if errors.get(name) else ""
        items.append(f'<li><a href="{name}.html">{html.escape(name)}</a> '
                     f'(<a href="{name}/{name}.ipynb">notebook</a>) — {html.escape(DESCRIPTIONS[notebook])}'
                     f'{" (" + html.escape(setting) + ")" if setting else ""}{status}<br><small>{links}</small></li>')
    return ("<h2>Reports</h2><p>Executed analysis notebooks (HTML, and the .ipynb to open in Jupyter), their tables "
            f"(CSV) and figures (PNG).</p><ul>{''.join(items) or '<li>no results yet</li>'}</ul>")


def _loss_curves(reports_dir: Path) -> str:
    """A thumbnail of every run's training-loss figure (written by its task notebook), linking to the run's
    executed notebook."""
    runs_dir = reports_dir.parent / "runs"
    figures = sorted(runs_dir.rglob(LOSS_FIGURE)) if runs_dir.is_dir() else []
    if not figures:
        return ""
    items = []
    for path in figures:
        run = path.parent.relative_to(runs_dir).as_posix()
        notebooks = sorted(path.parent.glob("*.ipynb"))
        target = f"../runs/{run}/{notebooks[0].name}" if notebooks else f"../runs/{run}/{path.name}"
        items.append(f'<figure><a href="{html.escape(target)}"><img src="../runs/{html.escape(run)}/{path.name}" '
                     f'loading="lazy" alt="training loss of {html.escape(run)}"></a>'
                     f"<figcaption>{html.escape(run)}</figcaption></figure>")
    return f"<h2>Training loss of every run</h2><div class='thumbs'>{''.join(items)}</div>"
