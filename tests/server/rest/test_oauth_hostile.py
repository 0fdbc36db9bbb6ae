"""Hostile input on the OAuth endpoints: always an RFC error or an error page, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.smart_helpers import ADMIN, ASSERTION_TYPE, bearer


@pytest.fixture(scope="module")
def c(mongo_uri: str, module_settings: Any) -> Iterator[TestClient]:
    from pymongo import MongoClient

    from server.app import create_app

    settings = module_settings("hostile", auth="on", admin_token=ADMIN)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(settings.db_name)
    cleanup.close()


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE},
        {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": "a" * 20000,
        },
        {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": "eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOnsiJG5lIjoxfX0.sig",
        },
        {"grant_type": "authorization_code", "client_id": "x" * 5000, "code": "c"},
        {"grant_type": "authorization_code", "client_id": "", "code": "", "redirect_uri": ""},
        {"grant_type": "refresh_token", "client_id": "nobody", "refresh_token": "x"},
        {"grant_type": "\x00"},
    ],
)
def test_token_endpoint_never_500s(c: TestClient, form: dict[str, str]) -> None:
    r = c.post("/oauth/token", data=form)
    assert 400 <= r.status_code < 500, r.text
    assert "error" in r.json()


@pytest.mark.parametrize(
    "body",
    [b"[]", b"null", b'"x"', b"{", b'{"scope": 5}', b'{"redirect_uris": "https://a"}'],
)
def test_registration_never_500s(c: TestClient, body: bytes) -> None:
    r = c.post(
        "/oauth/register",
        content=body,
        headers={**bearer(ADMIN), "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text


@pytest.mark.parametrize(
    "query",
    ["", "client_id=nobody", "client_id=%00&redirect_uri=javascript:alert(1)", "a=1&a=2"],
)
def test_authorize_errors_render_a_page_not_a_redirect(c: TestClient, query: str) -> None:
    r = c.get(f"/oauth/authorize?{query}")
    assert r.status_code == 400 and "location" not in r.headers
    assert "<script" not in r.text.lower()


@pytest.mark.parametrize("body", [b"[]", b'{"patient": {"$ne": 1}}', b'{"patient": "../x"}', b"{"])
def test_launch_never_500s(c: TestClient, body: bytes) -> None:
    r = c.post(
        "/oauth/launch", content=body, headers={**bearer(ADMIN), "Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text


def test_introspect_needs_a_token_parameter(c: TestClient) -> None:
    r = c.post("/oauth/introspect", data={"x": "1"}, headers=bearer(ADMIN))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_bearer_with_operator_like_text_is_401(c: TestClient) -> None:
    r = c.get("/fhir/Patient", headers=bearer('{"$ne": null}'))
    assert r.status_code == 401
