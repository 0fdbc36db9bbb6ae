"""The tracker plugin: static files at /app and the app's public OAuth client (docs/tracker.md).

The pages themselves are tested in a real browser (tests/e2e/test_tracker_browser.py); these
tests pin the server side: what is served, which client is registered, and that the client can
only send codes to the registered callbacks.
"""

from __future__ import annotations

import base64
import hashlib
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.config import Settings
from server.tracker import CLIENT_ID, STATIC, client_metadata, redirect_uris

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = "tracker-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
)


@pytest.mark.parametrize(
    ("host", "port", "base_url", "expected"),
    [
        (
            "127.0.0.1",
            8080,
            None,
            [
                "http://127.0.0.1:8080/app/callback.html",
                "http://localhost:8080/app/callback.html",
            ],
        ),
        (
            "0.0.0.0",
            9000,
            None,
            [
                "http://127.0.0.1:9000/app/callback.html",
                "http://localhost:9000/app/callback.html",
            ],
        ),
        ("consilium.internal", 8443, None, ["http://consilium.internal:8443/app/callback.html"]),
        ("0.0.0.0", 8080, "https://so.example.org/", ["https://so.example.org/app/callback.html"]),
    ],
)
def test_redirect_uris_come_from_the_settings(
    host: str, port: int, base_url: str | None, expected: list[str]
) -> None:
    settings = Settings(host=host, port=port, base_url=base_url, mongodb_uri="mongodb://x")
    assert redirect_uris(settings) == expected


def test_the_client_is_public_and_unbound() -> None:
    meta = client_metadata(Settings(mongodb_uri="mongodb://x"))
    assert meta["token_endpoint_auth_method"] == "none"
    assert meta["grant_types"] == ["authorization_code", "refresh_token"]
    assert "consilium" not in meta  # the user's own binding applies, never the client's


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/app/", "text/html"),
        ("/app/worklist.html", "text/html"),
        ("/app/app.js", "javascript"),
        ("/app/app.css", "text/css"),
        ("/app/folders.json", "application/json"),
    ],
)
def test_app_files_are_served_without_a_token(
    app_factory: Callable[..., FastAPI], path: str, kind: str
) -> None:
    with TestClient(app_factory()) as c:
        r = c.get(path)
    assert r.status_code == 200
    assert kind in r.headers["content-type"]


def test_unknown_app_file_is_404(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory()) as c:
        assert c.get("/app/nope.js").status_code == 404


def _clients(app: FastAPI) -> list[Any]:
    auth = app.state.consilium.auth
    assert auth is not None
    return list(auth.store.Client.objects(client_id=CLIENT_ID))


def test_with_auth_on_the_client_is_registered_once(app_factory: Callable[..., FastAPI]) -> None:
    first = app_factory(auth="on")
    db = first.state.consilium.settings.db_name
    second = app_factory(auth="on", db_name=db, port=9999)
    found = _clients(second)
    assert len(found) == 1
    assert found[0].redirect_uris == [
        "http://127.0.0.1:9999/app/callback.html",
        "http://localhost:9999/app/callback.html",
    ]


def test_with_auth_off_no_client_is_registered(app_factory: Callable[..., FastAPI]) -> None:
    assert _clients(app_factory(auth="off")) == []


def _authorize(c: TestClient, redirect_uri: str) -> Any:
    return c.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri,
            "scope": "openid fhirUser user/*.rs",
            "state": "s1",
            "aud": "http://testserver/fhir",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        },
        follow_redirects=False,
    )


def test_the_client_reaches_the_sign_in_page(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(auth="on")) as c:
        r = _authorize(c, "http://127.0.0.1:8080/app/callback.html")
    assert r.status_code == 200
    assert "Consilium case tracker" in r.text


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://evil.example/app/callback.html",
        "http://127.0.0.1:8080/app/callback.html.evil",
        "http://127.0.0.1:8081/app/callback.html",
    ],
)
def test_the_client_never_redirects_elsewhere(
    app_factory: Callable[..., FastAPI], redirect_uri: str
) -> None:
    with TestClient(app_factory(auth="on")) as c:
        r = _authorize(c, redirect_uri)
    assert r.status_code == 400
    assert "location" not in r.headers


def test_every_static_file_is_package_data() -> None:
    """An installed (non-editable) package must carry the app's files."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["*"]
    for f in STATIC.iterdir():
        assert any(f.relative_to(STATIC.parent).match(g) for g in globs), f.name
