"""Errors for bad data, each naming the file and line (or the language) and what would be valid."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Raised for malformed, missing or unusable data files."""


def file_error(path: Path | str, line: int | None, message: str) -> DataError:
    where = f"{path}:{line}" if line is not None else str(path)
    return DataError(f"{where}: {message}")
