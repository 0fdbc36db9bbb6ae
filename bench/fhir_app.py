"""Runs the Consilium app against an existing MongoDB (for benchmarks)."""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import serve_app
from server.app import create_app
from server.config import Settings


def build(uri: str, db_name: str) -> FastAPI:
    return create_app(Settings(mongodb_uri=uri, db_name=db_name))  # auth/audit from the env


if __name__ == "__main__":
    serve_app(build)
