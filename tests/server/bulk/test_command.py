"""``consilium import`` end to end: exit codes, failure lines, summary (server/bulk/command.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from server.cli import main
from tests.server.bulk.kit import observation, patient, write_ndjson


@pytest.fixture
def db_name(mongo_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"t_import_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CONSILIUM_MONGODB_URI", mongo_uri)
    monkeypatch.setenv("CONSILIUM_DB_NAME", name)
    monkeypatch.setenv("CONSILIUM_AUTH", "off")
    monkeypatch.setenv("CONSILIUM_AUDIT", "on")
    yield name
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri)
    client.drop_database(name)
    client.close()


def test_a_clean_import_exits_0_and_is_audited(
    db_name: str, mongo_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    write_ndjson(tmp_path / "in" / "Patient.ndjson", [patient("p1")])
    write_ndjson(tmp_path / "in" / "Observation.ndjson.gz", [observation("o1", "p1")])
    code = main(["import", str(tmp_path / "in"), "--data-dir", str(tmp_path / "data")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "imported 2 (2 created, 0 updated, 0 unchanged)" in out.out
    assert "import" in out.err  # the progress bar
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri)
    try:
        db = client[db_name]
        assert db["Observation"].count_documents({"_id": "o1"}) == 1
        # the audit queue was drained at the end (logged, or already materialized)
        logged = sum(len(b["entries"]) for b in db["_audit_log"].find())  # type: ignore[arg-type]
        assert logged + db["AuditEvent"].count_documents({}) >= 2
    finally:
        client.close()


def test_a_failed_line_exits_1_and_names_file_and_line(
    db_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_ndjson(tmp_path / "a.ndjson", [patient("p1"), observation("o1", "ghost")])
    code = main(["import", str(path), "--data-dir", str(tmp_path / "data"), "--batch", "1"])
    out = capsys.readouterr()
    assert code == 1
    assert f"{path}:2: 422 " in out.err and "Patient/ghost" in out.err
    assert "failed 1" in out.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.ndjson"], "no such file"),
        (["a.ndjson", "--batch", "0"], "at least 1"),
    ],
)
def test_unusable_inputs_exit_2(
    db_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    write_ndjson(tmp_path / "a.ndjson", [patient("p1")])
    argv = ["import", *[str(tmp_path / a) if a.endswith(".ndjson") else a for a in args]]
    assert main([*argv, "--data-dir", str(tmp_path / "data")]) == 2
    assert message in capsys.readouterr().err
