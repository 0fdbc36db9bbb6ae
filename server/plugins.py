"""Which packages attach to the app, in order. Each plugin registers hooks and public routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.deps import AppState

Plugin = Callable[["FastAPI", "AppState"], None]


def default_plugins() -> list[Plugin]:
    from server import audit, profile_validation, read_cache, second_opinion, smart
    from server.bundles.plugin import install as bundles
    from server.operations.plugin import install as operations
    from server.search import page_cache
    from server.search.plugin import install as search
    from server.tracker import plugin as tracker

    return [
        search,  # index provider + capability details; before anything writes resources
        profile_validation.plugin,  # claimed/required profiles first: shape before domain rules
        second_opinion.plugin,
        bundles,  # transactions, conditional ops, PATCH; its PRE_WRITE hook keeps `refs`
        operations,  # $operations in the CapabilityStatement (router: server/app.py)
        smart.smart_plugin,  # last: its PRE_WRITE hook records ownership of the final resource
        audit.audit_plugin,
        read_cache.plugin,  # its commit hook runs first among the POST_COMMIT hooks
        page_cache.plugin,  # after read_cache: first search pages ride its invalidation
        tracker,  # the /app web app and its OAuth client; after smart (it needs state.auth)
    ]
