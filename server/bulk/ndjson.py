"""Reading NDJSON inputs: files, ``.ndjson.gz`` files and directories of them.

One resource per line (the Bulk Data format). Lines are yielded as raw bytes with their file and
line number, so a bad line can be reported where an operator finds it; parsing happens in
``server.bulk.load`` (exact decimals via ``server.fhirjson``).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SUFFIXES = (".ndjson", ".ndjson.gz")


@dataclass(frozen=True)
class Line:
    """One input line: where it is (``source`` path, 1-based ``number``) and its bytes."""

    source: str
    number: int
    text: bytes


def expand(paths: Sequence[Path]) -> list[Path]:
    """The files to read, in order: a file as given, a directory as its ``*.ndjson`` and
    ``*.ndjson.gz`` files sorted by name. Raises ``FileNotFoundError`` for a missing path and
    ``ValueError`` for a directory without NDJSON files (an empty import is a mistake)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))
            if not found:
                raise ValueError(f"{path}: no *.ndjson or *.ndjson.gz files in this directory")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return out


def _open(path: Path) -> BinaryIO:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def read_lines(files: Sequence[Path]) -> Iterator[Line]:
    """Every non-blank line of every file (blank lines, e.g. a trailing one, are not resources)."""
    for path in files:
        with _open(path) as fh:
            for number, raw in enumerate(fh, start=1):
                if raw.strip():
                    yield Line(str(path), number, raw)


def count_lines(files: Sequence[Path]) -> int:
    """How many non-blank lines ``read_lines`` will yield: the progress bar's total (a first
    pass costs about a second per million lines, far less than importing them)."""
    total = 0
    for path in files:
        with _open(path) as fh:
            total += sum(1 for raw in fh if raw.strip())
    return total
