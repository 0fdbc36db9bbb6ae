"""Loads conformance resources and the demo network (placeholder until the seed data lands)."""

from __future__ import annotations

from typing import Any


def seed_all(state: Any, *, demo: bool) -> dict[str, int]:
    return {}
