"""The reports' index page: provenance, the headline table with significance, a thumbnail of every figure
(analyses and every run's loss curve), and links to every report's notebook."""

import re
from datetime import UTC, datetime

import pandas as pd

from fslib import __version__
from fslib.analysis import tables as analysis
from fslib.analysis.reports import write_index
from fslib.store.results import COLUMNS

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
                    "000154a24f5d0000000049454e44ae426082")  # a 1x1 PNG


def results():
    rows = [{"task": "ner", "method": method, "k": k, "seed": seed, "lang": lang, "split": "test", "metric": "f1",
             "value": base + shift + seed + i, "epoch": None, "step": None, "run_id": f"{method}-{seed}",
             "config_hash": "x"}
            for method, k, shift in (("zero-shot", 0, 0.0), ("ord-FS", 5, 2.0), ("gradient-co-train", 5, 5.0))
            for seed in (1, 2) for i, (lang, base) in enumerate((("en", 80.0), ("qa", 50.0), ("qb", 40.0)))]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame[["epoch", "step"]] = frame[["epoch", "step"]].astype("Int64")
    return frame


def test_index_is_the_page_to_read_first(tmp_path):
    reports, runs = tmp_path / "reports", tmp_path / "runs"
    main_folder = reports / "main_results"
    main_folder.mkdir(parents=True)
    analysis.main_table(results()).to_csv(main_folder / "main_results.csv")
    analysis.main_comparisons(results()).to_csv(main_folder / "significance.csv", index=False)
    (reports / "language_benefit_ner").mkdir()
    (reports / "language_benefit_ner" / "language_benefit.png").write_bytes(PNG)
    run = runs / "ner" / "ord-FS" / "k5" / "seed1"
    run.mkdir(parents=True)
    (run / "training_loss.png").write_bytes(PNG)
    (run / "ner.ipynb").write_text("{}")
    jobs = [("main_results", "main_results", {}), ("language_benefit_ner", "language_benefit", {"task": "ner", "k": 5})]

    write_index(reports / "index.html", jobs, {"language_benefit_ner": "RuntimeError: boom"})
    page = (reports / "index.html").read_text()

    # provenance: version, a commit (or why there is none), the build time
    meta = re.search(r"fslib (\S+) · commit ([^·<]+) · built (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", page)
    assert meta and meta.group(1) == __version__
    assert re.fullmatch(r"[0-9a-f]{12}( \+changes)?|unknown \(not a git checkout\)", meta.group(2).strip())
    built = datetime.strptime(meta.group(3), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - built).total_seconds()) < 600
    # the headline: Table 1 (ord-FS at K=5: mean over seeds of (83+54+45)/3 and (84+55+46)/3) and significance
    assert "Headline: Table 1" in page and "61.17 ± 0.71" in page
    assert "Differences to ord-FS and naive-co-train" in page and "+3.00 [+3.00, +3.00]" in page
    # thumbnails of the analyses' figures and of every run's loss curve, linking to the run's notebook
    assert '<img src="language_benefit_ner/language_benefit.png"' in page
    assert '<img src="../runs/ner/ord-FS/k5/seed1/training_loss.png"' in page
    assert 'href="../runs/ner/ord-FS/k5/seed1/ner.ipynb"' in page
    # every report: its HTML, its notebook, its files, and failures said
    assert 'href="main_results.html"' in page and 'href="main_results/main_results.ipynb"' in page
    assert 'href="main_results/significance.csv"' in page
    assert "failed: RuntimeError: boom" in page


def test_index_without_results_says_so(tmp_path):
    (tmp_path / "reports").mkdir()
    write_index(tmp_path / "reports" / "index.html", [], {})
    page = (tmp_path / "reports" / "index.html").read_text()
    assert "No headline table yet" in page and "no results yet" in page and "<img" not in page
