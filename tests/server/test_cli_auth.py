"""``consilium client add`` / ``user add`` write the same records as the registration endpoint;
``consilium token`` signs demo users' tokens that the server accepts, in development only."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from server.cli import main
from tests.smart_helpers import ADMIN, KeyPair
from tests.smart_helpers import bearer as bearer_of

TESTSERVER = "http://testserver"  # the TestClient's base: the issuer the app derives


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


# ---------------------------------------------------------------------------- consilium token
def _dev_app(app_factory: Any) -> tuple[TestClient, Path]:
    """An app with authorization on over a development data dir (demo credentials + keys)."""
    from seed.demo_access import load_or_create

    app = app_factory(auth="on", admin_token=ADMIN)
    settings = app.state.consilium.settings
    load_or_create(settings)
    return TestClient(app), settings.data_dir


def _token(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["token", *args])
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err


def test_token_for_a_demo_user_is_accepted_by_the_server(
    app_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client, data_dir = _dev_app(app_factory)
    code, token, err = _token(
        capsys, "--user", "dr.patel", "--data-dir", str(data_dir), "--base-url", TESTSERVER
    )
    assert code == 0, err
    assert token.count(".") == 2 and "\n" not in token  # just the JWT on stdout
    assert "expires in 300 s" in err
    with client:
        auth = {"Authorization": f"Bearer {token}"}
        created = client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=auth)
        assert created.status_code == 201, created.text
        read = client.get(f"/fhir/Patient/{created.json()['id']}", headers=auth)
        assert read.status_code == 200


def test_token_carries_the_demo_users_party_binding(
    app_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client, data_dir = _dev_app(app_factory)
    args = ["--data-dir", str(data_dir), "--base-url", TESTSERVER]
    _, patel, _ = _token(capsys, "--user", "dr.patel", *args)
    _, maple, _ = _token(capsys, "--user", "insurer.maple", *args)
    with client:
        r = client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer_of(patel))
        pid = r.json()["id"]
        assert client.get(f"/fhir/Patient/{pid}", headers=bearer_of(maple)).status_code == 403
        assert client.get("/fhir/Coverage", headers=bearer_of(maple)).status_code == 200


def test_token_scope_and_lifetime_options(
    app_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from auth.keys import KeyStore
    from auth.tokens import decode_access_token

    _, data_dir = _dev_app(app_factory)
    code, token, err = _token(
        capsys,
        "--user",
        "coord.silva",
        "--data-dir",
        str(data_dir),
        "--scope",
        "user/Task.rs",
        "--scope",
        "user/Patient.rs",
        "--lifetime",
        "120",
    )
    assert code == 0, err
    claims = decode_access_token(KeyStore(data_dir / "keys"), token)
    assert claims["scope"] == "user/Task.rs user/Patient.rs"
    assert claims["exp"] - claims["iat"] == 120 and "expires in 120 s" in err
    assert (claims["role"], claims["org"], claims["sub"]) == (
        "coordinator",
        "net-consilium-experts",
        "coord.silva",
    )
    assert claims["iss"] == "http://127.0.0.1:8080/fhir"  # what `make run` serves


@pytest.mark.parametrize(
    "args",
    [
        ["--user", "nobody"],
        ["--user", "dr.patel", "--scope", "user/*.zz"],
        ["--user", "dr.patel", "--lifetime", "0"],
        ["--user", "dr.patel", "--lifetime", "999999"],
    ],
)
def test_token_refuses_bad_requests(
    app_factory: Any, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    _, data_dir = _dev_app(app_factory)
    code, out, err = _token(capsys, *args, "--data-dir", str(data_dir))
    assert code != 0 and out == "" and err.startswith("error:")


def test_token_needs_a_development_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _token(capsys, "--user", "dr.patel", "--data-dir", str(tmp_path))
    assert code != 0 and out == ""
    assert "demo-credentials.json" in err
    assert not (tmp_path / "keys").exists()  # refused before touching any key


def test_token_only_for_users_the_credentials_file_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "demo-credentials.json").write_text(
        json.dumps({"admin_token": "a" * 32, "users": {"dr.patel": "pw"}})
    )
    assert _token(capsys, "--user", "dr.walsh", "--data-dir", str(tmp_path))[0] != 0
    assert _token(capsys, "--user", "dr.patel", "--data-dir", str(tmp_path))[0] == 0


@pytest.mark.parametrize(
    ("overrides", "issuer"),
    [
        ({}, "http://127.0.0.1:8080/fhir"),
        ({"host": "0.0.0.0", "port": 9000}, "http://127.0.0.1:9000/fhir"),
        ({"host": "::1"}, "http://[::1]:8080/fhir"),
        ({"base_url": "https://fhir.example.org/"}, "https://fhir.example.org/fhir"),
    ],
)
def test_issuer_is_the_fhir_base_the_server_derives(overrides: dict[str, Any], issuer: str) -> None:
    from server.cli_auth import fhir_issuer
    from server.config import Settings

    assert fhir_issuer(Settings(**overrides)) == issuer
