"""Which packages attach to the app, in order. Each plugin registers hooks and public routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.deps import AppState

Plugin = Callable[["FastAPI", "AppState"], None]


def default_plugins() -> list[Plugin]:
    return []
