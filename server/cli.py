"""The ``consilium`` command: serve, seed, reindex, import, token (and, with SMART, client
management)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from server.config import Settings
from server.embedded_db import EmbeddedDatabase

log = logging.getLogger("consilium")
# How long a stop waits for in-flight requests (a long export) before cancelling them.
GRACEFUL_SHUTDOWN_SECONDS = 10


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)  # type: ignore[arg-type]


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """Yield a MongoDB URI: the configured one, or an embedded SecantusDB for the data dir."""
    if settings.mongodb_uri:
        yield settings.mongodb_uri
        return
    embedded = EmbeddedDatabase(
        settings.db_dir,
        sync_on_commit=settings.embedded_sync_on_commit,
        cache_size=settings.embedded_cache_size,
    )
    try:
        yield embedded.start()
    finally:
        embedded.stop()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM, then stop the embedded database before exiting.

    The order on a stop: uvicorn stops accepting and finishes in-flight requests (bounded by
    ``GRACEFUL_SHUTDOWN_SECONDS``), the app's lifespan shutdown drains the audit queue and closes
    the store, and only then does ``database()`` stop the embedded database (which sits in its
    own process group, so a terminal's Ctrl-C does not stop it early; see ``embedded_db``).
    uvicorn re-raises the signal it caught after its graceful shutdown; a Python-level SIGTERM
    handler turns that into SystemExit so the ``finally`` that stops the database still runs
    (SIGINT already arrives as KeyboardInterrupt).
    """
    import uvicorn

    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    from server.app import create_app

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.workers > 1:
        return _serve_workers(args, settings)
    with database(settings) as uri:
        if args.seed and settings.auth_enabled:
            from seed.demo_access import ensure_demo_access

            settings, credentials = ensure_demo_access(settings, uri)
            log.info("demo admin token and user passwords: %s", credentials)
        app = create_app(settings, mongodb_uri=uri)
        from server.search.registry_state import check

        check(app.state.consilium.store)
        if args.seed:
            from seed.loader import seed_all
            from seed.progress import ProgressBar

            seed_all(app.state.consilium, demo=True, progress=ProgressBar())
        log.info("Consilium FHIR base: http://%s:%s/fhir", settings.host, settings.port)
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            proxy_headers=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    return 0


def _serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    """``--workers N``: one database, prepared once here, N uvicorn processes on one port."""
    import uvicorn

    from server import workers

    with database(settings) as uri:
        if args.seed and settings.auth_enabled:
            from seed.demo_access import ensure_demo_access

            settings, credentials = ensure_demo_access(settings, uri)
            log.info("demo admin token and user passwords: %s", credentials)
        workers.prepare_keys(settings)
        from server.app import create_app
        from server.search.registry_state import check

        # The parent's own app, for the once-only work (no read cache: it serves nothing).
        app = create_app(settings.model_copy(update={"read_cache": 0}), mongodb_uri=uri)
        check(app.state.consilium.store)
        if args.seed:
            from seed.loader import seed_all
            from seed.progress import ProgressBar

            seed_all(app.state.consilium, demo=True, progress=ProgressBar())
        for hook in app.state.consilium.shutdown_hooks:
            hook()
        app.state.consilium.store.close()
        workers.export(workers.worker_environment(settings, uri))
        log.info(
            "Consilium FHIR base: http://%s:%s/fhir (%d workers)",
            settings.host,
            settings.port,
            args.workers,
        )
        uvicorn.run(
            workers.APP_FACTORY,
            factory=True,
            workers=args.workers,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            proxy_headers=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from server.app import create_app

    settings = _settings(args)
    with database(settings) as uri:
        app = create_app(settings, mongodb_uri=uri)
        from seed.loader import seed_all
        from seed.progress import ProgressBar

        counts = seed_all(
            app.state.consilium, demo=not args.conformance_only, progress=ProgressBar()
        )
        app.state.consilium.store.close()
    for name, n in counts.items():
        print(f"{name}: {n}")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """Re-extract search index values for every stored resource (after a registry change)."""
    from server.app import create_app
    from server.search.reindex import reindex_all

    settings = _settings(args)
    with database(settings) as uri:
        app = create_app(settings, mongodb_uri=uri)
        counts = reindex_all(app.state.consilium.store, args.type or None)
        app.state.consilium.store.close()
    for name, n in counts.items():
        print(f"{name}: {n}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consilium", description="Consilium FHIR R4 server")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, default=None, help="data directory (db, keys)")

    serve = sub.add_parser(
        "serve", help="run the server (starts the embedded DB unless CONSILIUM_MONGODB_URI is set)"
    )
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--seed",
        action="store_true",
        help="load conformance resources and demo data first (idempotent)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        choices=range(1, 65),
        metavar="N",
        help="uvicorn worker processes on one port, sharing one database (default 1)",
    )
    common(serve)
    serve.set_defaults(func=cmd_serve)

    seed = sub.add_parser(
        "seed", help="load conformance resources and the demo network (idempotent)"
    )
    seed.add_argument("--conformance-only", action="store_true")
    common(seed)
    seed.set_defaults(func=cmd_seed)

    reindex = sub.add_parser("reindex", help="rebuild search index values of stored resources")
    reindex.add_argument("--type", action="append", help="only this resource type (repeatable)")
    common(reindex)
    reindex.set_defaults(func=cmd_reindex)

    from seed.progress import ProgressBar
    from server.bulk.command import add_parser as add_import_parser

    add_import_parser(sub, common, ProgressBar)

    from server.cli_auth import add_parsers, add_token_parser

    add_parsers(sub, common, _with_database)
    add_token_parser(sub, common, cmd_token)
    return parser


def cmd_token(args: argparse.Namespace) -> int:
    """``consilium token``: the demo users and credentials come from the seed (no database)."""
    from seed.demo_access import DEMO_USERS, read_credentials
    from server.cli_auth import cmd_token as issue

    settings = _settings(args)
    if args.base_url:
        settings = settings.model_copy(update={"base_url": args.base_url})
    users = {u[0]: u for u in DEMO_USERS}
    return issue(args, settings, read_credentials(settings.data_dir), users)


def _with_database(fn):  # type: ignore[no-untyped-def]
    """Run ``fn(args, settings, uri)`` against the configured or embedded database."""

    def run(args: argparse.Namespace) -> int:
        settings = _settings(args)
        with database(settings) as uri:
            return int(fn(args, settings, uri))

    return run


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("CONSILIUM_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
