"""Every shipped grid plans the same runs as before the restructure into subpackages (issue 21): the run ids
(with their config hashes) and run folders of `fslib batch FILE --dry-run`, kept in tests/fixtures/dry_run/ as
the command printed them at 48f7058 (real_ner.txt at 9723013: its grid came later), the checkout's root written
as <ROOT>. A run whose hash changed would be planned again from scratch and its finished results no longer found.

Source-model folder names are not compared: their key includes the data files' modification times
(fslib.store.ledger.source_model_folder), which differ from one checkout to the next."""

import re
from pathlib import Path

import pytest

from fslib.batch.planning import plan

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "dry_run"
GRIDS = sorted(ROOT.glob("params/*/*.yaml"))
RUN_LINE = re.compile(r"^  \[\s*\w+\] (\S+)  (\S+)$")


def fixture_runs(path: Path) -> list[tuple[str, str]]:
    """(run id, folder relative to the checkout) of each run line of a dry run's output, in order."""
    runs = [RUN_LINE.match(line).groups() for line in path.read_text().splitlines() if RUN_LINE.match(line)]
    return [(run_id, folder.replace("<ROOT>/", "")) for run_id, folder in runs]


def test_every_shipped_grid_has_its_fixture():
    assert {f"{grid.parent.name}_{grid.stem}.txt" for grid in GRIDS} == {path.name for path in FIXTURES.iterdir()}


# The real grids read ../shared/data beside the checkout; their hashes count that path relative to the outputs
# (fslib.store.config.portable_path), so their fixtures hold where ../shared is a folder beside the checkout, as
# where they were taken, and not where it is missing or a link to elsewhere.
SHARED_BESIDE = (ROOT.parent / "shared").is_dir() and not (ROOT.parent / "shared").is_symlink()


@pytest.mark.parametrize("grid", GRIDS, ids=lambda grid: f"{grid.parent.name}/{grid.name}")
def test_the_grid_plans_the_same_runs_and_hashes(grid, monkeypatch):
    if grid.parent.name == "real" and not SHARED_BESIDE:
        pytest.skip(f"{ROOT.parent / 'shared'} is not a folder beside the checkout: the real grids' hashes differ")
    monkeypatch.chdir(ROOT)  # output_dir is relative to the working directory, as in the fixture
    expected = fixture_runs(FIXTURES / f"{grid.parent.name}_{grid.stem}.txt")
    text = (FIXTURES / f"{grid.parent.name}_{grid.stem}.txt").read_text()
    assert len(expected) == int(re.search(r"^(\d+) runs:", text, re.M).group(1)) > 0  # every run line was read
    runs, _ = plan([grid], prepare=False)
    assert [(run.config.run_id, str(run.folder.relative_to(ROOT))) for run in runs] == expected
