"""System-level interactions: batch/transaction Bundles (filled in by the transactions issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
