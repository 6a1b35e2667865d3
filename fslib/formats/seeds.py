"""The kit's one stable hash: seeds and cache keys that are the same on every machine and process."""

from __future__ import annotations

import hashlib


def stable_seed(*parts: object) -> int:
    """A seed derived from its parts, the same on every machine and Python process (unlike `hash`)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")
