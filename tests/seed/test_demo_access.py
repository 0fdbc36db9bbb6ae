"""Demo credentials are generated into the data dir, private, and stable across restarts."""

from __future__ import annotations

import json
import stat

from auth.store import AuthStore
from seed.demo_access import CREDENTIALS_FILE, DEMO_USERS, ensure_demo_access


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
