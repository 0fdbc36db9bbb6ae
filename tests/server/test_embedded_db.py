"""The embedded SecantusDB child process: start, durability with sync-on-commit, stop."""

from __future__ import annotations

from pathlib import Path

from pymongo import MongoClient

from server.embedded_db import EmbeddedDatabase


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
