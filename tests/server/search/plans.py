"""Query-plan inspection shared by the index-use tests: record the ``find`` commands an app
sends (a pymongo CommandListener on its client) and replay them through ``explain``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from pymongo import MongoClient, monitoring

import server.database
from server.app import create_app
from server.config import Settings


class Recorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.finds: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.finds.append((event.database_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def recording_app(settings: Settings) -> tuple[FastAPI, Recorder]:
    """An app whose MongoClient reports every command to the returned recorder."""
    recorder = Recorder()
    real = server.database.MongoClient  # type: ignore[attr-defined]

    def with_listener(*args: Any, **kwargs: Any) -> Any:
        return real(*args, event_listeners=[recorder], **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(server.database, "MongoClient", with_listener)
        app = create_app(settings)
    return app, recorder


def stages(plan: Any) -> list[str]:
    if isinstance(plan, dict):
        out = [plan["stage"]] if "stage" in plan else []
        for v in plan.values():
            out += stages(v)
        return out
    if isinstance(plan, list):
        return [s for p in plan for s in stages(p)]
    return []


def assert_index_scans(
    mongo: MongoClient[dict[str, Any]], recorder: Recorder, what: str, *, require_ixscan: bool
) -> None:
    """No recorded find on a resource collection is a COLLSCAN (and, if asked, each is an
    IXSCAN: a find answered without touching a collection would pass the first check alone)."""
    checked = 0
    for db, cmd in recorder.finds:
        if cmd["find"].startswith("_"):
            continue
        # the find as it was sent, hint included (the read primitive hints the live walk)
        replay = {"find": cmd["find"], "filter": cmd.get("filter", {}), "sort": cmd.get("sort", {})}
        if "hint" in cmd:
            replay["hint"] = cmd["hint"]
        explain = mongo[db].command("explain", replay, verbosity="queryPlanner")
        found = stages(explain["queryPlanner"]["winningPlan"])
        assert "COLLSCAN" not in found, (what, cmd["find"], cmd.get("filter"))
        if require_ixscan:
            assert "IXSCAN" in found, (what, cmd["find"], cmd.get("filter"))
        checked += 1
    assert checked >= 1
