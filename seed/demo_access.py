"""Credentials for trying the demo with authorization on, generated into the data directory.

Why generated: security by default means auth stays on for ``make run`` and no secret lives in
the repository, yet a newcomer must be able to get a token. So the first ``serve --seed`` writes
a random admin token (unless ``CONSILIUM_ADMIN_TOKEN`` is set) and demo users with random
passwords into ``<data-dir>/demo-credentials.json`` (mode 0600), and later starts reuse them
(adding a password for a demo user the file does not know yet, so older data dirs get the new
users on their next ``serve --seed``). The file also marks a data dir as a development one:
``consilium token`` signs tokens only where it exists (``server/cli_auth.py``).

One demo user per party role, for every README example: clinics (``dr.*``), specialists
(``expert.*``, each acting for its own PractitionerRole), insurers (``insurer.*``) and a
coordinator of the second-opinion service (``coord.silva``). Insurer and coordinator staff have
no Practitioner in the demo network, so they carry no ``fhirUser`` (see ``auth/users.py``); the
party binding is what the policy uses.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from server.config import Settings

CREDENTIALS_FILE = "demo-credentials.json"

# username, fhirUser, organization, role, practitioner role (specialists act for their own role)
DemoUser = tuple[str, str | None, str, str, str | None]
DEMO_USERS: tuple[DemoUser, ...] = (
    ("dr.patel", "PractitionerRole/role-doc-lakeshore-patel", "clinic-lakeshore", "clinic", None),
    ("dr.walsh", "PractitionerRole/role-doc-st-brigid-walsh", "clinic-st-brigid", "clinic", None),
    (
        "expert.oncology",
        "PractitionerRole/exp-oncology-ca",
        "net-consilium-experts",
        "specialist",
        "exp-oncology-ca",
    ),
    (
        "expert.cardiology",
        "PractitionerRole/exp-cardiology",
        "net-consilium-experts",
        "specialist",
        "exp-cardiology",
    ),
    ("coord.silva", None, "net-consilium-experts", "coordinator", None),
    ("insurer.maple", None, "ins-maple-mutual", "insurer", None),
    ("insurer.albion", None, "ins-albion-health", "insurer", None),
    (
        "expert.neurology",
        "PractitionerRole/exp-neurology",
        "net-consilium-experts",
        "specialist",
        "exp-neurology",
    ),
    (
        "expert.nephrology",
        "PractitionerRole/exp-nephrology",
        "net-consilium-experts",
        "specialist",
        "exp-nephrology",
    ),
    ("dr.joshi", "PractitionerRole/role-doc-pune-joshi", "clinic-deccan", "clinic", None),
)


def demo_user(username: str) -> DemoUser | None:
    """The demo user's definition (binding), or None for a name that is not a demo user."""
    return next((u for u in DEMO_USERS if u[0] == username), None)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when rewriting a file someone made readable
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)


def load_or_create(settings: Settings) -> dict[str, Any]:
    path = settings.data_dir / CREDENTIALS_FILE
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    else:
        data = {"admin_token": secrets.token_urlsafe(32), "users": {}}
    users: dict[str, str] = data.setdefault("users", {})
    missing = [name for name, *_ in DEMO_USERS if name not in users]
    for name in missing:
        users[name] = secrets.token_urlsafe(12)
    if missing:
        _write_private(path, data)
    return data


def read_credentials(data_dir: Path) -> dict[str, Any] | None:
    """The data dir's demo credentials, or None when it is not a development data dir."""
    path = data_dir / CREDENTIALS_FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def ensure_demo_access(settings: Settings, mongodb_uri: str) -> tuple[Settings, Path]:
    """Return settings carrying an admin token, after making sure the demo users exist."""
    from auth.store import AuthStore

    data = load_or_create(settings)
    if not settings.admin_token:
        settings = settings.model_copy(update={"admin_token": data["admin_token"]})
    store = AuthStore(mongodb_uri, settings.db_name)
    try:
        for username, fhir_user, org, role, practitioner_role in DEMO_USERS:
            if store.get_user(username) is None:
                store.add_user(
                    username,
                    data["users"][username],
                    fhir_user,
                    organization=org,
                    role=role,
                    practitioner_role=practitioner_role,
                    display_name=username,
                )
    finally:
        store.close()
    return settings, settings.data_dir / CREDENTIALS_FILE
