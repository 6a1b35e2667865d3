"""Reports survive bad runs: a results file that cannot be read is left out of every report, and the build names
every such file (summary, index) and exits non-zero; the other reports are built from the runs that can be read."""

import signal
from pathlib import Path

import pandas as pd
from test_reports_robust import stand_ins, write_run  # noqa: F401 (a fixture)

from fslib.analysis import tables as analysis
from fslib.cli import main


def spoil(runs: Path) -> list[Path]:
    """Two bad runs beside the good ones: one cut mid-row, one with a word for a value."""
    cut = write_run(runs, "ord-FS", 5, 2) / "results.csv"
    cut.write_text(cut.read_text()[:-7])
    edited = write_run(runs, "gradient-co-train", 5, 2) / "results.csv"
    rows = pd.read_csv(edited)
    rows["value"] = rows["value"].astype(object)
    rows.loc[1, "value"] = "fifty"
    rows.to_csv(edited, index=False)
    return [cut, edited]


def test_the_report_loader_leaves_out_every_bad_file_and_names_each(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "ord-FS", 5, 1)
    write_run(runs, "gradient-co-train", 5, 1)
    bad = spoil(runs)
    results, notes = analysis.load_report_results(runs, separate=False)
    assert sorted(results["seed"].unique()) == [1] and len(results) == 6  # the two good runs, three rows each
    left_out = [note for note in notes if note.startswith("left out, unreadable: ")]
    assert len(left_out) == 2 and all(any(str(file) in note for note in left_out) for file in bad)
    assert set(analysis.unreadable_results(sorted(runs.rglob("results.csv")))) == set(bad)


def test_a_build_with_bad_runs_publishes_the_rest_names_every_bad_file_and_fails(stand_ins, monkeypatch,  # noqa: F811
                                                                                capfd):
    output, _, env = stand_ins
    for key in ("FSLIB_NOTEBOOKS", "STAND_IN_MARKS"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setattr("fslib.core.execution.NOTEBOOKS", Path(env["FSLIB_NOTEBOOKS"]))
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # leave pytest's own SIGTERM handling alone
    bad = spoil(output / "runs")
    assert main(["reports", str(output), "--jobs", "1"]) == 1
    out = capfd.readouterr().out
    assert "2 report(s) failed" in out
    assert all(f"unreadable results {file}: {file}" in out for file in bad)
    index = (output / "reports" / "index.html").read_text()
    assert all(str(file) in index for file in bad)
    assert 'href="main_results/table.csv"' in index  # built from the good runs
    assert not (output / "reports" / ".results-fingerprint").exists()  # the next build tries again
