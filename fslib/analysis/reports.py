"""The reports of a batch: the analysis notebooks executed on the runs' results into `outputs/reports/`, each also
exported to HTML, and an `index.html` linking them. Which analyses run follows from the results present (a
language-benefit report per task that has gradient-co-train and ord-FS, a heatmap where gradient similarities
were recorded, ...); the index says which were left out and why. Where the results hold several models, every
report is built per model. Reports are rebuilt only when some run's results changed.

A build writes into a fresh folder beside `reports/` and swaps it in only when every notebook has run, so a
killed or interrupted build leaves the previous reports as they were. A report that fails is named in the index
and in `ReportBuild.failed`; `fslib batch` and `fslib reports` then exit non-zero.
"""

from __future__ import annotations

import ctypes
import hashlib
import html
import json
import os
import queue
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from fslib.analysis.aggregators import surgeon_variant_ks
from fslib.analysis.similarity import SIMILARITY_FILE
from fslib.core.containment import files_named
from fslib.core.execution import KernelSession, kill_kernels
from fslib.core.files import write_atomic
from fslib.engine.tracking import LOSS_FIGURE
from fslib.store.results import RESULTS_FILE

DESCRIPTIONS = {
    "main_results": "Table 1 and the per-language tables, beside the paper's figures",
    "language_benefit": "Δ per target language, gradient-co-train − ord-FS (Tables 2 and 8)",
    "gradient_heatmap": "cosine similarity of per-language gradients (Figure 1)",
    "script_study": "single language, same-script subsets, all languages (Figure 2)",
    "overfitting_curves": "dev scores per epoch of ord-FS+dev, and selection rules over epochs (Figures 3 and 5)",
    "aggregators": "other gradient-conflict surgeons vs naive co-training and the paper's surgery: gains, cost",
}
SCRIPT_STUDY_METHODS = ("gradient-single", "gradient-subset")
STAMP = ".results-fingerprint"


@dataclass
class ReportBuild:
    """What a report build did: the index, the reports that failed (name -> error) and those left out (name ->
    why), whether anything was built (False: results unchanged since the last build), and notes on what the
    results mix."""
    index: Path
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    rebuilt: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _preferred_k(ks) -> int:
    ks = sorted(set(ks) - {0})
    return 5 if 5 in ks else (ks[-1] if ks else 0)


def plan_reports(results: pd.DataFrame, runs_dir: Path) -> tuple[list[tuple[str, str, dict]], dict[str, str]]:
    """(report name, notebook, parameters) for every analysis the results support, and for every analysis they do
    not support, why (report name -> reason). With several models (a `model` column), one set per model: the
    names end in `_<model>` and the parameters name the model."""
    models = sorted(set(results["model"].dropna().map(str))) if "model" in results.columns else []
    if len(models) <= 1:
        return _plan_one(results, runs_dir, {}, "")
    jobs, skipped, suffixes = [], {}, set()
    from fslib.analysis.tables import model_name

    for model in models:
        suffix = _slug(model_name(model))
        while suffix in suffixes:  # two local folders of the same name
            suffix += "_"
        suffixes.add(suffix)
        model_jobs, model_skipped = _plan_one(results[results["model"].map(str) == model], runs_dir,
                                              {"model": model}, f"_{suffix}")
        jobs += model_jobs
        skipped.update(model_skipped)
    return jobs, skipped


def _slug(text: str) -> str:
    return "".join(char if char.isalnum() or char in "-." else "_" for char in text)


def _plan_one(results: pd.DataFrame, runs_dir: Path, extra: dict, suffix: str):
    test = results[results["split"] == "test"]
    if test.empty:
        return [], {f"main_results{suffix}": "no test results yet"}
    jobs, skipped = [(f"main_results{suffix}", "main_results", dict(extra))], {}
    similarity_tasks = ({path.relative_to(runs_dir).parts[0] for path in files_named(runs_dir, SIMILARITY_FILE)}
                        if runs_dir.is_dir() else set())
    for task in sorted(test["task"].unique()):
        rows = test[test["task"] == task]
        methods = set(rows["method"])
        name = f"language_benefit_{task}{suffix}"
        if {"gradient-co-train", "ord-FS"} <= methods:
            k = _preferred_k(rows[rows["method"] == "gradient-co-train"]["k"])
            jobs.append((name, "language_benefit", {"task": task, "k": k, **extra}))
        else:
            absent = " and ".join(m for m in ("gradient-co-train", "ord-FS") if m not in methods)
            skipped[name] = f"compares gradient-co-train with ord-FS; no test results of {absent}"
        name = f"gradient_heatmap_{task}{suffix}"
        if task in similarity_tasks:
            jobs.append((name, "gradient_heatmap", {"task": task, "k": _preferred_k(rows["k"]), **extra}))
        else:
            skipped[name] = "no run recorded gradient similarities (gradient_similarity: true in the grid)"
        name = f"script_study_{task}{suffix}"
        if methods & set(SCRIPT_STUDY_METHODS):
            k = _preferred_k(rows[rows["method"].isin(SCRIPT_STUDY_METHODS)]["k"])
            jobs.append((name, "script_study", {"task": task, "k": k, **extra}))
        else:
            skipped[name] = "no gradient-single or gradient-subset runs (the script study's grids)"
        name = f"aggregators_{task}{suffix}"
        if ks := surgeon_variant_ks(runs_dir, task):
            jobs.append((name, "aggregators", {"task": task, "k": _preferred_k(ks), **extra}))
        else:
            skipped[name] = "no gradient-co-train runs with another surgeon (params/mini/aggregators.yaml)"
        name = f"overfitting_curves_{task}{suffix}"
        curves = results[(results["task"] == task) & (results["method"] == "ord-FS+dev") & (results["split"] == "dev")]
        if not curves.empty:
            jobs.append((name, "overfitting_curves", {"task": task, "k": _preferred_k(curves["k"]), **extra}))
        else:
            skipped[name] = "no per-epoch dev scores of ord-FS+dev"
    return jobs, skipped


def analyses(results: pd.DataFrame, runs_dir: Path) -> list[tuple[str, str, dict]]:
    """(report name, notebook, parameters) for every analysis the results support."""
    return plan_reports(results, runs_dir)[0]


def _results_fingerprint(runs_dir: Path) -> str:
    stamps = [f"{path}:{path.stat().st_mtime_ns}" for path in sorted(files_named(runs_dir, RESULTS_FILE))]
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()


STOPPED = "not finished: the build was stopped"


def _execute(name: str, notebook: str, parameters: dict, runs_dir: Path, build_dir: Path, reports_dir: Path,
             stop: threading.Event, session: KernelSession) -> tuple[str, str | None]:
    from nbconvert import HTMLExporter

    if stop.is_set():
        return name, STOPPED
    folder = build_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    executed = folder / f"{name}.ipynb"
    try:
        session.execute_notebook(notebook, executed,
                                 {"results_path": str(runs_dir), "output_dir": str(folder), **parameters})
        error = None
    except Exception as failure:  # the executed notebook keeps the error; the index says so
        error = f"{type(failure).__name__}: {str(failure)[-500:]}"
    if stop.is_set():
        return name, STOPPED
    if executed.exists():
        try:
            _point_at(executed, build_dir, reports_dir)
            body, _ = HTMLExporter().from_filename(str(executed))
            (build_dir / f"{name}.html").write_text(body)
        except Exception as failure:
            error = error or f"HTML export: {type(failure).__name__}: {failure}"
    return name, error


def _point_at(executed: Path, build_dir: Path, reports_dir: Path) -> None:
    """The executed notebook's injected `output_dir` names the build folder; after the swap it is `reports_dir`."""
    notebook = json.loads(executed.read_text())
    for cell in notebook["cells"]:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"]).replace(str(build_dir), str(reports_dir))
            cell["source"] = source.splitlines(keepends=True)
    executed.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def build_reports(output_dir: Path, jobs: int = 1, force: bool = False) -> ReportBuild:
    """Execute the analyses of the results under `output_dir/runs` into a fresh folder and swap it in as
    `output_dir/reports`; returns what was built (`ReportBuild.index`, `.failed`). Skipped when the results did
    not change since the last build that succeeded (unless `force`). Interrupted (Ctrl-C, SIGTERM: any
    exception raised in this thread), it stops the running notebooks' kernels, leaves the old reports as they
    were and re-raises."""
    from fslib.analysis.tables import load_report_results, unreadable_results

    output_dir = Path(output_dir)
    runs_dir, reports_dir = output_dir / "runs", output_dir / "reports"
    _recover(output_dir, reports_dir)
    index = reports_dir / "index.html"
    fingerprint = _results_fingerprint(runs_dir) if runs_dir.is_dir() else ""
    stamp = reports_dir / STAMP
    if not force and index.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return ReportBuild(index, rebuilt=False)
    try:
        results, notes = load_report_results(runs_dir, separate=False)
        unreadable = unreadable_results(sorted(files_named(runs_dir, RESULTS_FILE))) if runs_dir.is_dir() else {}
    except Exception as failure:  # unreadable results: nothing is built, the old reports stay
        return ReportBuild(index, {"(reading the results)": f"{type(failure).__name__}: {failure}"}, rebuilt=False)
    jobs_list, skipped = plan_reports(results, runs_dir)
    build_dir = output_dir / f".reports-build-{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    stop = threading.Event()
    to_do: queue.SimpleQueue = queue.SimpleQueue()
    for job in jobs_list:
        to_do.put(job)
    finished: queue.SimpleQueue = queue.SimpleQueue()

    def execute_in_turn() -> None:  # one thread's notebooks, in one kernel
        with KernelSession() as session:
            while not stop.is_set():
                try:
                    name, notebook, parameters = to_do.get_nowait()
                except queue.Empty:
                    return
                finished.put(_execute(name, notebook, parameters, runs_dir, build_dir, reports_dir, stop, session))

    outcomes: dict[str, str | None] = {}
    pool = ThreadPoolExecutor(max(1, jobs))
    futures = [pool.submit(execute_in_turn) for _ in range(min(max(1, jobs), len(jobs_list)))]
    try:
        with tqdm(total=len(jobs_list), desc="reports", unit="notebook") as bar:
            while len(outcomes) < len(jobs_list):
                try:
                    name, error = finished.get(timeout=0.2)
                except queue.Empty:
                    for future in futures:  # a thread that failed outside a notebook: its error, raised here
                        if future.done():
                            future.result()
                    continue
                outcomes[name] = error
                bar.update()
                if error:
                    bar.write(f"report failed: {name}: {error}")
    except BaseException:
        _stop_build(pool, futures, stop)
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    pool.shutdown()
    # a run whose results cannot be read is left out of every report and fails the build (rerun it)
    failed = {**{f"unreadable results {file}": problem for file, problem in unreadable.items()},
              **{name: error for name, error in outcomes.items() if error}}
    write_index(build_dir / "index.html", jobs_list, outcomes, skipped, notes)
    if not failed:  # a failed report is tried again by the next build, even on the same results
        (build_dir / STAMP).write_text(fingerprint)
    _swap_in(build_dir, reports_dir)
    return ReportBuild(index, failed, skipped, True, notes)


def report_summary(build: ReportBuild) -> str:
    """What a user reads at the end of a batch or `fslib reports`: the index, and every report that failed."""
    lines = [f"report index: {build.index}"]
    if build.failed:
        kept = "; the previous reports were kept" if not build.rebuilt else ""
        lines.append(f"{len(build.failed)} report(s) failed{kept} (exit status 1):")
        lines += [f"  {name}: {error}" for name, error in build.failed.items()]
    return "\n".join(lines)


def _stop_build(pool: ThreadPoolExecutor, futures, stop: threading.Event, patience: float = 30.0) -> None:
    """Start no more notebooks and kill the kernels of those running, until every thread has seen its kernel die
    (a kernel still starting is killed on the next round)."""
    stop.set()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        kill_kernels()
        if all(future.done() for future in futures):
            break
        wait(futures, timeout=0.2)


# ---- swapping the new reports in -------------------------------------------------------------------------------
def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 with RENAME_EXCHANGE); False where that is not available."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0


def _swap_in(build_dir: Path, reports_dir: Path) -> None:
    """Make `build_dir` the reports folder. An old folder is exchanged with the new one in one rename where the
    file system allows it; elsewhere it is renamed aside first, and a build killed between the two renames is
    repaired by the next one (`_recover`)."""
    if not reports_dir.exists():
        build_dir.rename(reports_dir)
        return
    if _exchange(build_dir, reports_dir):
        shutil.rmtree(build_dir, ignore_errors=True)  # now holds the old reports
        return
    old = reports_dir.with_name(f".reports-old-{socket.gethostname()}-{os.getpid()}")
    reports_dir.rename(old)
    build_dir.rename(reports_dir)
    shutil.rmtree(old, ignore_errors=True)


def _recover(output_dir: Path, reports_dir: Path) -> None:
    """Clean up after builds that were killed: their unfinished folders (of this host, whose process is gone,
    or older than a day), and old reports renamed aside by a swap that did not finish (put back if there are
    no reports)."""
    if not output_dir.is_dir():
        return
    for leftover in output_dir.glob(".reports-build-*"):
        if not _owner_alive(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
    olds = sorted((path for path in output_dir.glob(".reports-old-*") if not _owner_alive(path)),
                  key=lambda path: path.stat().st_mtime)
    if olds and not reports_dir.exists():
        olds.pop().rename(reports_dir)
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


def _owner_alive(folder: Path) -> bool:
    """Whether the build that named `folder` (`.reports-<kind>-<host>-<pid>`) may still be running."""
    host, _, pid = folder.name.split("-", 2)[-1].rpartition("-")
    if time.time() - folder.stat().st_mtime > 86400:
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return int(pid) != os.getpid()


def write_index(index: Path, jobs: list[tuple[str, str, dict]], errors: dict[str, str | None],
                skipped: dict[str, str] | None = None, notes: list[str] | None = None) -> None:
    """The page to read first: when and with what the reports were built, what the results mix (`notes`), the
    headline table (Table 1 and the differences to ord-FS and naive-co-train with their significance), a
    thumbnail of every figure linking to it, every report with its notebook (HTML and .ipynb), tables and
    status, and the reports left out with why (`skipped`)."""
    reports_dir = index.parent
    sections = [_provenance(), _notes(notes or []), _headline(reports_dir, jobs), _thumbnails(reports_dir, jobs),
                _report_list(reports_dir, jobs, errors, skipped or {}), _loss_curves(reports_dir)]
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
    from datetime import datetime

    from fslib import __version__

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        commit += " +changes" if dirty else ""
    except (OSError, subprocess.SubprocessError):
        commit = "unknown (not a git checkout)"
    built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<p class='meta'>fslib {html.escape(__version__)} · commit {html.escape(commit)} · "
            f"built {built}</p>")


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    return f"<h2>What these results mix</h2><ul>{items}</ul>"


def _headline(reports_dir: Path, jobs: list[tuple[str, str, dict]] | None = None) -> str:
    """Table 1 (mean ± sd, coloured against zero-shot) and the significance table, from main_results' CSVs (of
    each model's main_results where there are several)."""
    names = [name for name, notebook, _ in (jobs or []) if notebook == "main_results"] or ["main_results"]
    if len(names) == 1:
        return _headline_of(reports_dir / names[0], "")
    return "".join(_headline_of(reports_dir / name, f" ({name.removeprefix('main_results_')})") for name in names)


def _headline_of(folder: Path, which: str) -> str:
    from fslib.analysis.plots import style_comparisons, style_main_table

    parts = []
    if (folder / "main_results.csv").exists():
        main = pd.read_csv(folder / "main_results.csv").set_index(["task", "k", "method"])
        parts.append(f"<h2>Headline: Table 1{html.escape(which)}</h2>"
                     "<p>Mean ± sd over seeds of the average over languages (source included, as the paper "
                     "averages); coloured by the difference to zero-shot, best in bold.</p>"
                     + style_main_table(main).to_html())
    if (folder / "significance.csv").exists():
        comparisons = pd.read_csv(folder / "significance.csv")
        if not comparisons.empty:
            parts.append(f"<h2>Differences to ord-FS and naive-co-train{html.escape(which)}</h2>"
                         "<p>Δ over target languages with a 95% interval and p from a crossed languages × runs "
                         "model (a run's luck is shared by its languages; fslib.analysis.significance), Holm-corrected "
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


def _report_list(reports_dir: Path, jobs: list[tuple[str, str, dict]], errors: dict[str, str | None],
                 skipped: dict[str, str]) -> str:
    items = []
    for name, notebook, parameters in jobs:
        files = sorted((reports_dir / name).glob("*.[cp][sn][vg]"))  # .csv and .png
        links = " · ".join(f'<a href="{name}/{f.name}">{html.escape(f.name)}</a>' for f in files)
        setting = ", ".join(f"{key}={value}" for key, value in parameters.items())
        status = f' <b style="color:#b00">failed: {html.escape(errors[name])}</b>' if errors.get(name) else ""
        items.append(f'<li><a href="{name}.html">{html.escape(name)}</a> '
                     f'(<a href="{name}/{name}.ipynb">notebook</a>) — {html.escape(DESCRIPTIONS[notebook])}'
                     f'{" (" + html.escape(setting) + ")" if setting else ""}{status}<br><small>{links}</small></li>')
    left_out = "".join(f"<li>{html.escape(name)}: {html.escape(why)}</li>" for name, why in skipped.items())
    return ("<h2>Reports</h2><p>Executed analysis notebooks (HTML, and the .ipynb to open in Jupyter), their tables "
            f"(CSV) and figures (PNG).</p><ul>{''.join(items) or '<li>no results yet</li>'}</ul>"
            + (f"<h3>Not built</h3><ul>{left_out}</ul>" if left_out else ""))


def _loss_curves(reports_dir: Path) -> str:
    """A thumbnail of every run's training-loss figure (written by its task notebook), linking to the run's
    executed notebook."""
    runs_dir = reports_dir.parent / "runs"
    figures = sorted(files_named(runs_dir, LOSS_FIGURE)) if runs_dir.is_dir() else []
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
