"""What a file holds, as a short stamp for keys (a source model's folder,
fslib.store.source_models.source_model_folder): its name and the SHA-256 of its bytes, so that a copy (`cp -r`, rsync
without -t, a cluster's scratch) has the same stamp as the original and regenerated data with other bytes has
another.

Hashing a 2 GB model file takes seconds, and every batch and worker asks again, so checksums are cached in a JSON
file (`$FSLIB_CHECKSUM_CACHE`, default `~/.cache/fslib/checksums.json`), by resolved path, size, modification time
and inode: a file changed since is hashed again. The cache is only a shortcut; a lost or unreadable one costs a
rehash. Assumes nobody rewrites a file with other bytes of the same size within one modification-time tick.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fslib.core.files import fingerprint, write_atomic

_memo: dict[str, str] = {}


def cache_file() -> Path:
    return Path(os.environ.get("FSLIB_CHECKSUM_CACHE") or Path.home() / ".cache" / "fslib" / "checksums.json")


def content_stamp(path: Path) -> str:
    """`<file name>:<sha256 of its bytes>`."""
    return f"{path.name}:{checksum(path)}"


def checksum(path: Path) -> str:
    """The SHA-256 of the file's bytes, from the cache where the file is unchanged since it was hashed."""
    stat = Path(path).stat()
    key = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
    if key in _memo:
        return _memo[key]
    cached = _read_cache()
    if key not in cached:
        cached[key] = fingerprint(path)["sha256"]
        try:
            write_atomic(cache_file(), lambda temporary: Path(temporary).write_text(json.dumps(
                {**_read_cache(), key: cached[key]})))  # merged with what other processes added meanwhile
        except OSError:  # a read-only home: the checksum still holds, only the shortcut is lost
            pass
    _memo[key] = cached[key]
    return cached[key]


def _read_cache() -> dict[str, str]:
    try:
        cached = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return cached if isinstance(cached, dict) else {}
