"""Runs the Consilium app against an existing MongoDB (for benchmarks)."""

from __future__ import annotations

import argparse

import uvicorn

from server.app import create_app
from server.config import Settings

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    a = parser.parse_args()
    settings = Settings(mongodb_uri=a.uri, db_name=a.db)  # auth/audit from the environment
    uvicorn.run(create_app(settings), host="127.0.0.1", port=a.port, log_level="warning")
