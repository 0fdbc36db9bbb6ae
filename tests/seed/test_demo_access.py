"""Demo credentials are generated into the data dir, private, and stable across restarts."""

from __future__ import annotations

import json
import stat

from auth.store import AuthStore
from seed.demo_access import CREDENTIALS_FILE, DEMO_USERS, ensure_demo_access, load_or_create


def test_generates_private_admin_token_and_users(settings_factory, mongo_uri: str) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(auth="on")
    updated, path = ensure_demo_access(settings, mongo_uri)
    assert path == settings.data_dir / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert updated.admin_token == data["admin_token"]
    assert len(data["admin_token"]) >= 32
    store = AuthStore(mongo_uri, settings.db_name)
    try:
        for username, *_ in DEMO_USERS:
            assert store.check_login(username, data["users"][username]) is not None
            assert store.check_login(username, "wrong") is None
    finally:
        store.close()


def test_second_start_reuses_credentials(settings_factory, mongo_uri: str) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(auth="on")
    first, _ = ensure_demo_access(settings, mongo_uri)
    second, _ = ensure_demo_access(settings, mongo_uri)
    assert first.admin_token == second.admin_token


def test_configured_admin_token_wins(settings_factory, mongo_uri: str) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(auth="on", admin_token="operator-chosen-token-value")
    updated, _ = ensure_demo_access(settings, mongo_uri)
    assert updated.admin_token == "operator-chosen-token-value"


def test_every_party_role_has_a_demo_user() -> None:
    assert {role for *_, role, _ in DEMO_USERS} == {
        "clinic",
        "specialist",
        "insurer",
        "coordinator",
    }


def test_demo_users_keep_their_binding(settings_factory, mongo_uri: str) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(auth="on")
    ensure_demo_access(settings, mongo_uri)
    store = AuthStore(mongo_uri, settings.db_name)
    try:
        coord = store.get_user("coord.silva")
        joshi = store.get_user("dr.joshi")
        neuro = store.get_user("expert.neurology")
    finally:
        store.close()
    assert coord.binding() == {"org": "net-consilium-experts", "role": "coordinator", "prole": None}
    assert coord.fhir_user is None  # no Practitioner for the service's staff in the demo network
    assert (joshi.fhir_user, joshi.organization) == (
        "PractitionerRole/role-doc-pune-joshi",
        "clinic-deccan",
    )
    assert neuro.binding()["prole"] == "exp-neurology"


def test_an_older_credentials_file_gains_the_new_users(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(auth="on")
    path = settings.data_dir / CREDENTIALS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    old = {"admin_token": "kept-admin-token-" + "x" * 20, "users": {"dr.patel": "kept-pw"}}
    path.write_text(json.dumps(old))
    data = load_or_create(settings)
    assert data["admin_token"] == old["admin_token"] and data["users"]["dr.patel"] == "kept-pw"
    assert set(data["users"]) == {name for name, *_ in DEMO_USERS}
    assert json.loads(path.read_text()) == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
