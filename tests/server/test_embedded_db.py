"""The embedded SecantusDB child process: start, durability with sync-on-commit, cache size, stop."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from pymongo import MongoClient

from server.config import Settings
from server.embedded_db import EmbeddedDatabase, default_cache_size


def test_sync_on_commit_survives_a_killed_database(tmp_path: Path) -> None:
    db = EmbeddedDatabase(tmp_path / "db", sync_on_commit=True)
    db.start()
    client: MongoClient[dict[str, object]] = MongoClient(db.uri)
    client.t.c.insert_one({"_id": "kept"})
    client.close()
    assert db.process is not None
    db.process.kill()
    db.process.wait(timeout=10)
    db.process = None

    again = EmbeddedDatabase(tmp_path / "db")
    again.start()
    try:
        client = MongoClient(again.uri)
        assert client.t.c.find_one({"_id": "kept"}) == {"_id": "kept"}
        client.close()
    finally:
        again.stop()


def test_stop_ends_the_process(tmp_path: Path) -> None:
    db = EmbeddedDatabase(tmp_path / "db")
    db.start()
    proc = db.process
    assert proc is not None and proc.poll() is None
    db.stop()
    assert proc.poll() is not None


@pytest.mark.parametrize(
    ("memory_gib", "expected"),
    [(0.5, "1G"), (2, "1G"), (3, "1G"), (5, "2G"), (24, "11G"), (64, "31G")],
)
def test_default_cache_size_follows_mongods_rule(memory_gib: float, expected: str) -> None:
    assert default_cache_size(int(memory_gib * (1 << 30))) == expected


def test_cache_size_reaches_the_database_process(tmp_path: Path) -> None:
    db = EmbeddedDatabase(tmp_path / "db", cache_size="256M")
    db.start()
    try:
        assert db.process is not None
        argv = Path(f"/proc/{db.process.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[argv.index(b"--cache-size") + 1] == b"256M"
    finally:
        db.stop()


@pytest.mark.parametrize("bad", ["1T", "0G", "4 G", "4G --standalone", "-1G", "G"])
def test_malformed_cache_size_is_refused_before_it_reaches_argv(bad: str) -> None:
    with pytest.raises(ValidationError):
        Settings(embedded_cache_size=bad)  # type: ignore[call-arg]
