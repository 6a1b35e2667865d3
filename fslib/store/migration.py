"""Run folders of the layout before the config hash was part of a run's folder: found (`legacy_run_folders`),
announced (`legacy_notice`) and moved into the current layout (`migrate_runs`, `fslib migrate`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fslib.core.containment import files_named, inside
from fslib.store.config import RunConfig, run_subpath
from fslib.store.results import CONFIG_FILE, MANIFEST_FILE, RESULTS_FILE

LEGACY_LEAF = re.compile(r"seed\d+")  # runs/<task>/<label>/k<K>/seed<S>[/<targets>] held the files themselves
HASHED_LEAF = re.compile(r"-[0-9a-f]{12}$")  # the current layout's last part: <model>-<config hash>
TENSORBOARD = "tensorboard"


def legacy_run_folders(output_dir: Path | str) -> list[Path]:
    """Run folders under `output_dir/runs` in the layout before the config hash was part of the folder
    (`runs/<task>/<label>/k<K>/seed<S>[/<targets>]` holding results.csv): `fslib status` and `fslib batch` do not
    count them; `migrate_runs` moves them."""
    runs = Path(output_dir) / "runs"
    if not runs.is_dir():
        return []
    found = []
    for results in files_named(runs, RESULTS_FILE):
        folder = results.parent
        depth = len(folder.relative_to(runs).parts)
        if (depth == 4 and LEGACY_LEAF.fullmatch(folder.name)) or \
                (depth == 5 and LEGACY_LEAF.fullmatch(folder.parent.name) and not HASHED_LEAF.search(folder.name)):
            found.append(folder)
    return sorted(found)


def legacy_notice(output_dirs) -> list[str]:
    """Lines telling the user about run folders of the old layout (none where there are none)."""
    lines = []
    for output_dir in sorted({Path(path) for path in output_dirs}):
        folders = legacy_run_folders(output_dir)
        if folders:
            lines.append(f"note: {len(folders)} run folders under {output_dir / 'runs'} are in the layout before "
                         f"the config hash was part of a run's folder (e.g. {folders[0]}) and are not counted; "
                         f"`fslib migrate {output_dir}` moves them into the current layout (or delete them)")
    return lines


def migrate_runs(output_dir: Path | str) -> list[str]:
    """Move the finished runs of the old layout under `output_dir/runs` to their current folders (the folder
    their stored config.json gives, its hash computed with the paths it ran with); returns what it did, one line
    per folder. A folder whose config cannot be read, or whose current folder already holds results, stays."""
    output_dir = Path(output_dir)
    done = []
    for folder in legacy_run_folders(output_dir):
        try:
            config = RunConfig.load(folder / CONFIG_FILE)
            target = inside(output_dir / "runs", run_subpath(config), what=f"{folder / CONFIG_FILE}: its run folder")
        except (OSError, TypeError, ValueError) as error:
            done.append(f"kept {folder}: its config.json cannot be read ({error})")
            continue
        if (target / RESULTS_FILE).exists() or (target / MANIFEST_FILE).exists():
            done.append(f"kept {folder}: {target} already holds results")
            continue
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(folder.iterdir()):  # its files; a target set's run folder below it stays
            if entry.is_file() or entry.name == TENSORBOARD:
                os.replace(entry, target / entry.name)
        done.append(f"moved {folder} -> {target}")
    return done
