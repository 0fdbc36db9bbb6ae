"""The demo data, seeded once per test process and copied into each test's database.

Why: ``seed_all`` goes through the repository (validation, index extraction, a transaction per
batch) and costs 1.2 to 2 s; copying the 270-odd documents it leaves costs about 0.3 s, and dozens
of tests start from the demo. Tests of seeding itself (tests/seed/) still call ``seed_all``.

What makes a copy the same as a seed: the template is seeded by an app with the very same
settings but its database name and data directory (so the same stored layout, ownership facts
and derived values), and every collection is copied with its documents *and* its indexes (a
collection the seed created lazily keeps its unique keys). What differs: the copied resources
carry the template's timestamps (seconds older than the test), and no write hooks run for them;
the hooks' effects are in the copied documents, no process state depends on them (the read
cache is off in these tests).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from seed.loader import seed_all
from server.app import create_app

_lock = threading.Lock()
_templates: dict[tuple[str, bool, bool, str], str] = {}  # -> the template database's name
_clients: dict[str, MongoClient[dict[str, Any]]] = {}


def _client(uri: str) -> MongoClient[dict[str, Any]]:
    if uri not in _clients:
        _clients[uri] = MongoClient(uri, tz_aware=True)
    return _clients[uri]


def _template(settings: Any, demo: bool, network: bool) -> str:
    fingerprint = settings.model_dump_json(exclude={"db_name", "data_dir"})
    key = (str(settings.mongodb_uri), demo, network, fingerprint)
    with _lock:
        name = _templates.get(key)
        if name is None:
            name = f"tmpl_{uuid.uuid4().hex[:12]}"
            data_dir = Path(tempfile.mkdtemp(prefix="consilium-template-"))
            app = create_app(settings.model_copy(update={"db_name": name, "data_dir": data_dir}))
            try:
                seed_all(app.state.consilium, demo=demo, network=network)
            finally:
                app.state.consilium.store.close()
                shutil.rmtree(data_dir, ignore_errors=True)
            _templates[key] = name
    return name


def copy_database(uri: str, source: str, target: str) -> None:
    """Every collection of ``source`` into ``target``: indexes first, then the documents
    (replacing what the target's app wrote at start-up, such as its counters)."""
    client = _client(uri)
    src, dst = client[source], client[target]
    for name in src.list_collection_names():
        for spec in src[name].list_indexes():
            if spec["name"] == "_id_":
                continue
            options = {k: v for k, v in spec.items() if k not in ("key", "v", "ns")}
            dst[name].create_index(list(spec["key"].items()), **options)
        docs = list(src[name].find())
        dst[name].delete_many({})
        if docs:
            dst[name].insert_many(docs)


def seed_demo(state: Any, *, demo: bool = True, network: bool = False) -> None:
    """What ``seed_all(state, demo=demo, network=network)`` leaves, written by copying."""
    settings = state.settings
    template = _template(settings, demo, network)
    copy_database(str(settings.mongodb_uri), template, settings.db_name)
