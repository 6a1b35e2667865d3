"""Small file helpers with no heavy imports (the batch worker uses them before any kernel starts)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def temporary_beside(folder: Path, name: str) -> Path:
    """A new empty file `.<name>.*.tmp` in `folder` (so that a rename onto `folder / name` is atomic on POSIX),
    readable as the umask allows."""
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; collaborators on shared storage must read it
    return Path(temporary)


def write_atomic(path: Path, write) -> None:
    """Write a file through a temporary file in the same folder and a rename (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(path.parent, path.name)
    try:
        write(str(temporary))
        os.chmod(temporary, 0o666 & ~_umask())  # the writer may have replaced the file with one of its own mode
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def replace_folder(folder: Path, fill: Callable[[Path], None]) -> None:
    """Fill a sibling `<folder>.partial` and put it in `folder`'s place once complete: a reader sees the old
    folder or the new one, never half of one."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    fill(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def make_shareable(folder: Path | str) -> None:
    """Give `folder` and everything in it the modes a plain write would (files 0666, folders 0777, less the
    umask): safetensors writes weights 0600, which a group on shared storage cannot read."""
    umask = _umask()
    for root, _folders, files in os.walk(folder):
        os.chmod(root, 0o777 & ~umask)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o666 & ~umask)


def save_pretrained(folder: Path | str, *parts) -> None:
    """`part.save_pretrained(folder)` for each part (model, tokenizer), in order, with readable file modes."""
    for part in parts:
        part.save_pretrained(folder)
    make_shareable(folder)
def fingerprint(path: Path) -> dict:
    """A file's size and SHA-256, as run manifests record them (fslib.store.run_files) and readers check them."""
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": Path(path).stat().st_size, "sha256": digest.hexdigest()}
