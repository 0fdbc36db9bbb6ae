"""Several uvicorn worker processes on one port (``consilium serve --workers N``).

The parent prepares what must happen once: it starts the embedded database (or takes
``CONSILIUM_MONGODB_URI``), generates the SMART signing keys in the data dir (N workers starting
on an empty keys dir would each make their own and race for ``current``), creates the demo users
and loads ``--seed`` data. Each worker then builds its own app from the environment the parent
left (``app_from_env``): uvicorn spawns fresh interpreters, so settings travel as ``CONSILIUM_*``
variables. Everything else a worker keeps is either in MongoDB or safe per process
(docs/workers.md lists what was checked).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from server.config import Settings

APP_FACTORY = "server.workers:app_from_env"


def worker_environment(settings: Settings, uri: str) -> dict[str, str]:
    """The ``CONSILIUM_*`` variables that make a worker's ``Settings()`` equal the parent's."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"CONSILIUM_{name.upper()}"] = str(value)
    env["CONSILIUM_MONGODB_URI"] = uri
    return env


def app_from_env() -> FastAPI:
    """uvicorn's factory in each worker: the app for the settings in the environment."""
    from server.app import create_app

    settings = Settings()
    if not settings.mongodb_uri:
        raise RuntimeError("a worker needs CONSILIUM_MONGODB_URI (set by consilium serve)")
    return create_app(settings)


def prepare_keys(settings: Settings) -> None:
    """Generate the signing keys once, in the parent, before any worker starts."""
    if settings.auth_enabled:
        from auth.keys import KeyStore

        KeyStore(settings.keys_dir)


def export(env: dict[str, str]) -> None:
    os.environ.update(env)
