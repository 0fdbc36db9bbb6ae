"""Search interactions (type, system, compartment, POST _search): filled in by the search issue."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
