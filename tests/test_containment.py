"""A folder of runs never makes the kit act outside itself: a grid's label cannot place runs elsewhere, and a
crafted manifest, a symlink or a legacy run's config.json cannot make `status`, `batch` (its rerun), `migrate`
or the report loader read, stat, move or delete a file outside the folder they were given."""

import json
import os
import shutil
from pathlib import Path

import pytest
from test_run_store import GRID, finish, write_params

import fslib.store.run_files
from fslib.batch.params import ParamsError, load_params
from fslib.batch.planning import plan
from fslib.cli import main
from fslib.core.containment import check_name, files_named, member
from fslib.core.files import fingerprint
from fslib.store.config import RunConfig
from fslib.store.ledger import discard_results, run_status, write_run
from fslib.store.results import MANIFEST_FILE, load_results


def never_alive(marker: dict) -> bool:
    return False


@pytest.mark.parametrize("label", ["../../../../escaped", "/tmp/absolute-label", "a/b", "..", ".hidden",
                                   "tab\tlabel", "x" * 101])
def test_a_label_that_is_not_one_safe_name_is_refused_naming_the_field(tmp_path, label):
    params = write_params(tmp_path / "grid.yaml", [{**GRID, "languages": ["en", "de"], "label": label}], model="m",
                          output_dir=str(tmp_path / "out"))
    with pytest.raises(ParamsError, match=r"grids\[0\]\.label: .* is not a valid name"):
        load_params(params)
    with pytest.raises(ValueError, match="method_label"):  # a RunConfig built in a notebook: the same rule
        RunConfig(task="ner", method="ord-FS", k=1, seed=1, model="m", method_label=label).resolved()
    assert not (tmp_path / "out").exists() and not Path("/tmp/absolute-label").exists()


def test_the_labels_and_languages_the_kit_uses_are_safe_names():
    for name in ("gradient-single", "ord-FS+dev", "co-FT", "zh_yue", "en", "GUM", "v2.1"):
        assert check_name(name, "label") == name


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("a colleague's file, outside the output folder\n")
    return path


@pytest.fixture
def finished(tmp_path) -> tuple[RunConfig, Path]:
    """One finished run under tmp_path/shared/out (four levels below tmp_path: out/runs/ner/... is deeper)."""
    params = write_params(tmp_path / "grid.yaml", [{**GRID, "languages": ["en", "de"]}], model="m",
                          output_dir=str(tmp_path / "shared" / "out"))
    config = plan([params], prepare=False)[0][0].config
    return config, finish(config)


def lead_to(folder: Path, victim: Path, how: str) -> str:
    """A name for the manifest that leads from `folder` to `victim`: through `..` (its first part and the
    `.previous` copy's first part made real folders, so the old code's link and unlink succeed), absolute, or a
    symlink in the folder."""
    if how == "dotdot":
        (folder / "x").mkdir()
        (folder / ".x").mkdir()
        return "x/" + os.path.relpath(victim, folder / "x")
    if how == "absolute":
        return str(victim)
    (folder / "notes.csv").symlink_to(victim)
    return "notes.csv"


def spy_on_checksums(monkeypatch) -> list[Path]:
    read: list[Path] = []

    def spying(path):
        read.append(Path(path))
        return fingerprint(path)

    monkeypatch.setattr(fslib.store.run_files, "fingerprint", spying)
    return read


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_a_crafted_manifest_never_makes_status_or_a_rerun_touch_a_file_outside(finished, victim, how,
                                                                               monkeypatch):
    config, folder = finished
    name = lead_to(folder, victim, how)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["files"][name] = fingerprint(victim)  # matching: the old code took the run for done
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    content, links = victim.read_bytes(), victim.stat().st_nlink

    read = spy_on_checksums(monkeypatch)
    assert run_status(config, never_alive) == "corrupt"  # the batch reruns it
    assert all(path.resolve().is_relative_to(folder.resolve()) for path in read), read
    # the rerun's write, then a failed attempt's undo: the set they replace is the folder's own files only
    c = config.resolved()
    rows = load_results(folder / "results.csv", skip_unreadable=True)
    write_run(folder, c, rows, {})
    discard_results(folder)
    assert victim.read_bytes() == content and victim.stat().st_nlink == links
    assert all(path.resolve().is_relative_to(folder.resolve()) for path in read), read


def test_symlinked_result_files_and_folders_are_not_read_by_status_or_the_report_loader(finished, tmp_path):
    config, folder = finished
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(folder, elsewhere / "run")
    rows = len(load_results(folder))
    (folder / "results.csv").unlink()
    (folder / "results.csv").symlink_to(elsewhere / "run" / "results.csv")
    assert run_status(config, never_alive) == "corrupt"
    runs = tmp_path / "shared" / "out" / "runs"
    (runs / "ner" / "linked").symlink_to(elsewhere, target_is_directory=True)
    assert list(files_named(runs, "results.csv")) == []  # neither the symlinked file nor the symlinked folder
    assert len(load_results(runs)) == 0
    (folder / "results.csv").unlink()
    shutil.copy(elsewhere / "run" / "results.csv", folder / "results.csv")
    assert len(load_results(runs)) == rows  # the folder's own file is read


def test_a_marker_or_failure_record_that_links_outside_is_not_read(finished, tmp_path):
    config, folder = finished
    outside = tmp_path / "record.json"
    outside.write_text(json.dumps({"config_hash": config.config_hash, "executor": "local", "pid": os.getpid()}))
    (folder / "FAILED.json").symlink_to(outside)
    (folder / "worker.running.json").symlink_to(outside)
    assert fslib.store.ledger.failure(folder) is None
    assert fslib.store.ledger.running_record(folder / "worker.log") is None
    assert member(folder, "FAILED.json") is None and member(folder, "results.csv") == folder / "results.csv"


def test_migrate_never_moves_a_legacy_run_outside_the_output_folder(finished, tmp_path, capsys):
    _, folder = finished
    legacy = folder.parent  # runs/ner/<label>/k1/seed1: the layout before the config hash
    for path in folder.iterdir():
        if path.name != MANIFEST_FILE:
            path.rename(legacy / path.name)
    shutil.rmtree(folder)
    stored = json.loads((legacy / "config.json").read_text())
    (legacy / "config.json").write_text(json.dumps({**stored, "method_label": "../../../../../../escaped"}))
    output_dir = tmp_path / "shared" / "out"
    assert main(["migrate", str(output_dir)]) == 1  # something was kept
    assert "is not a valid name" in capsys.readouterr().out
    assert (legacy / "results.csv").exists()
    assert not any(path.name == "escaped" for path in tmp_path.rglob("escaped"))

