"""Extraction of search index values at write time (stub until the search engine lands)."""

from __future__ import annotations

from typing import Any

from pymongo import IndexModel


def extract_index(resource_type: str, resource: dict[str, Any]) -> dict[str, list[Any]]:
    return {}


def index_models(resource_type: str) -> list[IndexModel]:
    return []
