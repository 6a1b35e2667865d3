"""Containment: a folder of runs never makes the kit act outside itself.

Result folders are shared between colleagues and copied from clusters, so whatever their files say (a manifest's
file names, a symlink) and whatever a parameter file says (a label, a language), every path the kit derives
stays inside the folder it was given. Two rules:

- names that become one path component (a grid's `label`, a language code, a task) come from a safe alphabet
  (`check_name`): letters, digits, `.`, `_`, `+`, `-`, starting with a letter or digit, so never `..`, never a
  separator, never absolute;
- every path joined from such parts or read from a file is resolved (symlinks followed) and checked to lie in
  its folder (`inside`, `member`), never by string tests. A file whose path resolves elsewhere is treated as
  absent or damaged by the callers, never read, statted, moved or deleted.

Walking a folder (`files_named`) does not follow symlinked folders and yields only files that resolve inside it.
Assumes a POSIX filesystem; `Path.resolve` is not atomic, so this guards against what a folder's files say, not
against someone racing the kit on the same machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
MAX_NAME = 100


class ContainmentError(ValueError):
    """A name or a path that would lead outside its folder; the message names the field or file and the folder."""


def check_name(value: object, field: str) -> str:
    """`value` as one path component: a string of letters, digits, `.`, `_`, `+`, `-` (at most 100), starting
    with a letter or digit; ContainmentError naming `field` otherwise."""
    if not isinstance(value, str) or len(value) > MAX_NAME or not SAFE_NAME.fullmatch(value):
        raise ContainmentError(f"{field}: {value!r} is not a valid name; use 1 to {MAX_NAME} letters, digits, '.', "
                               f"'_', '+' or '-', starting with a letter or digit (it becomes a folder name)")
    return value


def is_inside(path: Path | str, folder: Path | str) -> bool:
    """Whether `path`, symlinks followed, lies in `folder` (itself resolved) or is that folder; False for a
    symlink loop."""
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def inside(folder: Path | str, *parts: str | Path, what: str = "path") -> Path:
    """`folder / parts...`, checked to resolve inside `folder`; ContainmentError naming `what` otherwise."""
    path = Path(folder).joinpath(*parts)
    if not is_inside(path, folder):
        raise ContainmentError(f"{what}: {path} resolves to {path.resolve()}, outside {Path(folder).resolve()}")
    return path


def member(folder: Path, name: object) -> Path | None:
    """The file `name` of `folder` as a manifest or a marker lists it: a plain file name (no separator, not `.`
    or `..`) whose path resolves inside `folder`; None for any other name (the caller treats it as not there)."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        return None
    path = folder / name
    return path if is_inside(path, folder) else None


def files_named(root: Path, name: str) -> Iterator[Path]:
    """Every file called `name` under `root`, in sorted order, without entering symlinked folders or hidden ones
    (names starting with "."), and only those whose path resolves inside `root`."""
    for current, folders, files in os.walk(root):  # followlinks=False: a symlinked folder is not entered
        folders[:] = sorted(folder for folder in folders if not folder.startswith("."))
        if name in files:
            path = Path(current) / name
            if is_inside(path, root):
                yield path
