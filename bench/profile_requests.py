"""Where a hot request's CPU goes (issue #14): read, create and a 10-match search under cProfile.

Usage: PYTHONPATH=. .venv/bin/python bench/profile_requests.py [-n 300] [--rounds 3]
       [--patients 300] [--top 25] [--only read,create,search] [--sort cumulative|tottime]
       [--clock wall|cpu]

Why this exists: bench/scale.py says *how far* the FHIR figures are from the raw FastAPI+pymongo
floor, not *why*. The gap is our own Python (token verification, the policy, the write path,
audit, rendering), so this runs the real app with auth ON (a real SMART backend-services token,
``bench.common.backend_token``) and audit ON against a real embedded SecantusDB, loads Patients
through HTTP, then for each kind of request prints, from ``-n`` unprofiled requests (the
quickest of ``--rounds`` passes, since a shared machine only ever adds time):

- CPU ms per request of the request thread (``time.thread_time``), for the FHIR app and for the
  raw floor (``bench/baseline_app.py``, in the same process, on the same database: its search
  replays the very ``find`` the FHIR search sent). FHIR minus floor is the cost of our code,
  the in-process client's share cancelling out;
- process CPU per request (adds the audit writer's and other background threads' share);
- database commands per request by name, on the request thread and on background threads (a
  pymongo ``CommandListener`` registered globally, so the auth store's client counts too);
- the request thread's wait per request on each command and collection (``insert Patient``,
  ``insert _history``, ``commitTransaction``…): where a write's database time goes, which the
  CPU figures above leave out (the database is another process);

then the Python function calls per request and the top functions of ``-n`` more FHIR requests
under cProfile (the call count is the figure to compare on a busy machine: load moves times,
never counts).

Why in-process and on one thread: cProfile only sees the thread it runs on. The apps are driven
through ``httpx.ASGITransport`` on this thread's event loop, and the threadpool hop of sync
handlers (``anyio.to_thread.run_sync``) becomes a direct call, so every frame of ours is in the
profile. That leaves out the hop and uvicorn's HTTP parsing (not ours, and the same for the
floor); bench/scale.py measures throughput over real sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio.to_thread
import httpx
from bson import json_util
from fastapi.testclient import TestClient
from pymongo import monitoring

from bench import baseline_app
from bench.common import FindRecorder, backend_token
from server.app import create_app
from server.config import Settings
from server.embedded_db import EmbeddedDatabase

BASE = "http://localhost"
DB_NAME = "bench_profile"
SCOPE = "system/*.cruds"
RARE = "Rarely"
JSON = {"Content-Type": "application/fhir+json"}
# Connection chatter, not work a request asked for.
_CHATTER = frozenset({"hello", "isMaster", "ismaster", "ping", "endSessions"})
Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


class CommandCounter(FindRecorder):
    """Database commands by name, this (request) thread's apart from background threads'; the
    last ``find`` on the request thread is kept for the floor to replay."""

    def __init__(self) -> None:
        super().__init__()
        self.main = threading.get_ident()
        self.request: Counter[str] = Counter()
        self.background: Counter[str] = Counter()
        self.request_ms: defaultdict[str, float] = defaultdict(
            float
        )  # wait per command + collection
        self._names: dict[int, str] = {}

    def reset(self) -> None:
        self.request.clear()
        self.background.clear()
        self.request_ms.clear()
        self.finds.clear()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in _CHATTER:
            return
        if threading.get_ident() != self.main:
            self.background[event.command_name] += 1
            return
        self.request[event.command_name] += 1
        target = event.command.get(event.command_name)
        where = f" {target}" if isinstance(target, str) else ""
        self._names[event.request_id] = event.command_name + where
        super().started(event)  # the request thread's finds, for the floor to replay

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        name = self._names.pop(event.request_id, None)
        if name is not None:
            self.request_ms[name] += event.duration_micros / 1000


async def _inline(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
    """``anyio.to_thread.run_sync`` without the thread: sync handlers stay on the profiled one."""
    return func(*args)


def patient(j: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:consilium:bench", "value": f"B{j:08d}"}],
        "name": [{"family": RARE if j < 10 else f"Fam{j}", "given": ["Ada"]}],
        "gender": "female" if j % 2 else "male",
        "birthDate": f"{1940 + j % 60}-{1 + j % 12:02d}-{1 + j % 28:02d}",
    }


@dataclass
class Timed:
    thread_ms: float
    process_ms: float
    request_commands: dict[str, float]
    background_commands: dict[str, float]
    request_command_ms: dict[str, float]


async def timed(
    client: httpx.AsyncClient,
    send: Send,
    n: int,
    expect: int,
    counter: CommandCounter,
    rounds: int = 1,
) -> Timed:
    """``rounds`` times ``n`` requests, unprofiled: CPU per request of the quickest round (the
    machine is shared: other work only ever adds), commands per request of the last."""
    best: tuple[float, float] | None = None
    for _ in range(rounds):
        counter.reset()
        t0, p0 = time.thread_time(), time.process_time()
        for i in range(n):
            r = await send(client, i)
            if r.status_code != expect:
                raise SystemExit(f"{r.request.url}: {r.status_code} {r.text[:300]}")
        took = (time.thread_time() - t0, time.process_time() - p0)
        best = took if best is None or took < best else best
    assert best is not None
    return Timed(
        best[0] / n * 1000,
        best[1] / n * 1000,
        {k: v / n for k, v in sorted(counter.request.items())},
        {k: v / n for k, v in sorted(counter.background.items())},
        {k: v / n for k, v in sorted(counter.request_ms.items())},
    )


def commands(per: dict[str, float]) -> str:
    inner = ", ".join(f"{k} {v:.2f}" for k, v in per.items())
    return f"{sum(per.values()):.2f} ({inner})"


def report(name: str, fhir: Timed, floor: Timed, prof: cProfile.Profile, a: Any) -> None:
    print(f"\n=== {name}: {a.n} requests each, unprofiled, quickest of {a.rounds} rounds")
    print(
        f"request thread CPU  FHIR {fhir.thread_ms:6.2f} ms   floor {floor.thread_ms:6.2f} ms"
        f"   FHIR - floor {fhir.thread_ms - floor.thread_ms:6.2f} ms/request"
    )
    print(f"process CPU         FHIR {fhir.process_ms:6.2f} ms   floor {floor.process_ms:6.2f} ms")
    print(f"commands/request    FHIR request thread {commands(fhir.request_commands)}")
    print(f"                    FHIR background     {commands(fhir.background_commands)}")
    print(f"                    floor               {commands(floor.request_commands)}")
    # wall ms the request thread waited per command (the database's work plus the wire; of
    # the last round, so a busy machine moves it): where the write path's time goes
    print(f"database ms/request FHIR request thread {commands(fhir.request_command_ms)}")
    print(f"                    floor               {commands(floor.request_command_ms)}")
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    # A count, not a time: the one figure here the machine's other work cannot move.
    print(f"Python calls/request {stats.total_calls / a.n:8.0f} (FHIR, profiled pass)")  # type: ignore[attr-defined]
    if a.top:
        stats.sort_stats(a.sort).print_stats(a.top)
        print(out.getvalue().split("\n", 6)[-1], end="")


async def profile(a: argparse.Namespace, settings: Settings, admin: str) -> None:
    counter = CommandCounter()
    monitoring.register(counter)  # before the apps: every client they make reports
    app = create_app(settings)
    token = backend_token("", admin, BASE, SCOPE, post=TestClient(app, base_url=BASE).post)
    auth = {"Authorization": f"Bearer {token}"}
    floor_app = baseline_app.build(str(settings.mongodb_uri), DB_NAME)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as client,
        httpx.AsyncClient(transport=httpx.ASGITransport(floor_app), base_url=BASE) as floor,
    ):
        ids: list[str] = []
        for j in range(a.patients):
            r = await client.post("/fhir/Patient", json=patient(j), headers={**auth, **JSON})
            r.raise_for_status()
            ids.append(r.json()["id"])
        body = patient(10**6)
        search_url = f"/fhir/Patient?family={RARE}&_count=10"
        counter.reset()
        r = await client.get(search_url, headers=auth)
        if len(r.json().get("entry", [])) != 10:
            raise SystemExit(f"search: expected 10 matches, got {r.text[:300]}")
        steps = [
            {"filter": c.get("filter", {}), "sort": c.get("sort"), "limit": c.get("limit", 0)}
            for c in counter.finds
            if c["find"] == "Patient" and "_id" not in c.get("filter", {})
        ]
        shape = {"collection": "Patient", "steps": steps}
        (await floor.post("/raw/queries/rare", content=json_util.dumps([shape]))).raise_for_status()

        async def read(c: httpx.AsyncClient, i: int) -> httpx.Response:
            return await c.get(f"/fhir/Patient/{ids[i % len(ids)]}", headers=auth)

        async def create(c: httpx.AsyncClient, i: int) -> httpx.Response:
            return await c.post("/fhir/Patient", json=body, headers={**auth, **JSON})

        async def search(c: httpx.AsyncClient, i: int) -> httpx.Response:
            return await c.get(search_url, headers=auth)

        async def raw_read(c: httpx.AsyncClient, i: int) -> httpx.Response:
            return await c.get(f"/raw/Patient/{ids[i % len(ids)]}")

        async def raw_create(c: httpx.AsyncClient, i: int) -> httpx.Response:
            return await c.post("/raw/Patient", json=body)

        async def raw_search(c: httpx.AsyncClient, i: int) -> httpx.Response:
            return await c.get(f"/raw/search/rare/{i}")

        kinds: dict[str, tuple[Send, Send, int]] = {
            "read": (read, raw_read, 200),
            "create": (create, raw_create, 201),
            "search": (search, raw_search, 200),
        }
        warm = max(a.n // 10, 5)
        for name in a.only.split(","):
            send, raw, expect = kinds[name]
            await timed(client, send, warm, expect, counter)  # caches, first-use imports
            fhir = await timed(client, send, a.n, expect, counter, a.rounds)
            await timed(floor, raw, warm, expect, counter)
            floor_figures = await timed(floor, raw, a.n, expect, counter, a.rounds)
            prof = cProfile.Profile(time.thread_time if a.clock == "cpu" else time.perf_counter)
            prof.enable()
            for i in range(a.n):
                await send(client, i)
            prof.disable()
            report(name, fhir, floor_figures, prof, a)
        # what the audit writer logged, materialized now rather than in the shutdown budget
        writer = app.state.consilium.audit_writer
        if writer is not None:
            await asyncio.to_thread(writer.flush, 120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("-n", type=int, default=300, help="requests per kind and pass")
    ap.add_argument("--rounds", type=int, default=3, help="timed passes; the quickest counts")
    ap.add_argument("--patients", type=int, default=300, help="Patients loaded first")
    ap.add_argument("--top", type=int, default=25, help="functions printed per kind (0: none)")
    ap.add_argument("--only", default="read,create,search", help="kinds, comma-separated")
    ap.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"])
    ap.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="profile timer; cpu leaves out waiting on the DB but costs a syscall per call",
    )
    a = ap.parse_args(argv)
    admin = "bench-admin-" + uuid.uuid4().hex
    anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as work, EmbeddedDatabase(Path(work) / "db") as db:
        settings = Settings(
            mongodb_uri=db.uri,
            db_name=DB_NAME,
            data_dir=Path(work) / "data",
            auth="on",
            audit="on",
            admin_token=admin,
            base_url=BASE,
            access_token_lifetime_seconds=36000,
        )
        asyncio.run(profile(a, settings, admin))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
