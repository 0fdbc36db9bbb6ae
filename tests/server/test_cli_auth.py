"""``consilium client add`` / ``user add`` write the same records as the registration endpoint."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pymongo import MongoClient

from server.cli import main
from tests.smart_helpers import KeyPair


@pytest.fixture
def db_env(mongo_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    name = f"t_cli_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CONSILIUM_MONGODB_URI", mongo_uri)
    monkeypatch.setenv("CONSILIUM_DB_NAME", name)
    yield name
    cleanup: MongoClient[dict[str, object]] = MongoClient(mongo_uri)
    cleanup.drop_database(name)
    cleanup.close()


def test_client_add_registers_a_bound_backend_client(
    db_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], mongo_uri: str
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(KeyPair().jwks()))
    code = main(
        [
            "client",
            "add",
            "--name",
            "insurer feed",
            "--scope",
            "system/Coverage.rs",
            "--jwks",
            str(jwks),
            "--org",
            "insurer-x",
            "--role",
            "insurer",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["consilium"]["role"] == "insurer"
    stored = MongoClient(mongo_uri)
    try:
        doc = stored[db_env].oauth_clients.find_one({"_id": out["client_id"]})
    finally:
        stored.close()
    assert doc is not None and doc["scope"] == "system/Coverage.rs"


def test_client_add_refuses_bad_scopes(db_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["client", "add", "--name", "x", "--redirect-uri", "https://a.example/cb"]
    assert main([*args, "--scope", "user/*.zz"]) == 2
    assert "invalid_client_metadata" in capsys.readouterr().err


def test_user_add_stores_a_hashed_password(db_env: str, mongo_uri: str) -> None:
    args = ["user", "add", "--username", "u1", "--password", "pw-123", "--fhir-user"]
    assert main([*args, "PractitionerRole/r1", "--org", "clinic-a", "--role", "clinic"]) == 0
    stored = MongoClient(mongo_uri)
    try:
        doc = stored[db_env].oauth_users.find_one({"_id": "u1"})
    finally:
        stored.close()
    assert doc is not None and doc["password_hash"].startswith("scrypt$")
    assert "pw-123" not in doc["password_hash"]


def test_keys_rotate_adds_a_current_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from auth.keys import KeyStore

    first = KeyStore(tmp_path / "keys").current.kid
    assert main(["keys", "rotate", "--data-dir", str(tmp_path)]) == 0
    again = KeyStore(tmp_path / "keys")
    assert again.current.kid != first and again.get(first) is not None
    assert again.current.kid in capsys.readouterr().out
