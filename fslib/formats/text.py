"""Opening a data file as UTF-8 text so that a file in another encoding is an error naming the file and line.

Python's decoding error says which byte of which block failed, not which file; `utf8_text` turns it into a
DataError with the file and the line of the first byte that is not UTF-8 (found by reading the file again, only
on that error path).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from fslib.formats.errors import file_error


@contextmanager
def utf8_text(path: Path | str, newline: str | None = None) -> Iterator[IO[str]]:
    """`open(path, encoding="utf-8")`; a UnicodeDecodeError raised while reading it becomes a DataError naming
    the file, the line and the byte."""
    try:
        with open(path, encoding="utf-8", newline=newline) as text:
            yield text
    except UnicodeDecodeError:
        data = Path(path).read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise file_error(path, data[:error.start].count(b"\n") + 1,
                             f"not UTF-8 text (byte 0x{data[error.start]:02x}); convert the file to UTF-8") from None
        raise
