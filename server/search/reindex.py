"""Re-extraction of index values for stored resources (stub until the search engine lands)."""

from __future__ import annotations

from server.database import Store


def reindex_all(store: Store, types: list[str] | None = None) -> dict[str, int]:
    return {}
