"""Finding and reading NDJSON inputs (server/bulk/ndjson.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.bulk.ndjson import count_lines, expand, read_lines
from tests.server.bulk.kit import patient, write_ndjson


def test_a_directory_means_its_ndjson_files_sorted(tmp_path: Path) -> None:
    write_ndjson(tmp_path / "b.ndjson", [patient("b")])
    write_ndjson(tmp_path / "a.ndjson.gz", [patient("a")])
    (tmp_path / "notes.txt").write_text("not an input")
    assert [p.name for p in expand([tmp_path])] == ["a.ndjson.gz", "b.ndjson"]


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        expand([tmp_path / "nope.ndjson"])


def test_a_directory_without_ndjson_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no \*\.ndjson"):
        expand([tmp_path])


@pytest.mark.parametrize("name", ["p.ndjson", "p.ndjson.gz"])
def test_lines_keep_their_numbers_and_blank_lines_are_skipped(tmp_path: Path, name: str) -> None:
    path = write_ndjson(tmp_path / name, [patient("x"), "", patient("y")])
    lines = list(read_lines([path]))
    assert [(ln.source, ln.number) for ln in lines] == [(str(path), 1), (str(path), 3)]
    assert b'"y"' in lines[1].text
    assert count_lines([path]) == 2
