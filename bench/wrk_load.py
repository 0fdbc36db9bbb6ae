"""Load from ``wrk`` (Debian's package), the tool issue #14's Medplum figures were measured with.

Why beside the threaded ``httpx`` loop of ``bench/common.py``: on a 2-core machine the Python
client spends about as much CPU per request as the server it measures, so its figures are the
client's as much as the server's, and they cannot be set against figures taken with ``wrk``.
``wrk`` (C, epoll, ``-t2 -c16`` as in the issue) leaves the cores to the server and the
database. The requests come from a generated Lua script: a fixed list, sent round-robin (each
wrk thread starts at its own offset), bodies read from files so a 100-entry Bundle needs no
quoting. Latencies and error counts come from wrk's own ``done`` hook.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Figures

PERCENTILES = (50.0, 95.0)


@dataclass(frozen=True)
class Call:
    """One HTTP request of a figure: method, path (with query) under the base URL, headers, body."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for ASCII


def script(calls: Sequence[Call], bodies: Path) -> str:
    """The Lua script: ``init`` builds every request once, ``request`` hands them out in turn."""
    lines = ["local reqs = {}", "local n = 0", "local i = 0", "function init(args)"]
    for k, call in enumerate(calls):
        body = "nil"
        if call.body is not None:
            path = bodies / f"body-{k}"
            path.write_bytes(call.body)
            body = f"io.open({_lua_string(str(path))}, 'rb'):read('*a')"
        headers = ", ".join(
            f"[{_lua_string(key)}] = {_lua_string(value)}" for key, value in call.headers.items()
        )
        lines.append(
            f"  reqs[{k + 1}] = wrk.format({_lua_string(call.method)}, "
            f"{_lua_string(call.path)}, {{{headers}}}, {body})"
        )
    lines += [
        "  n = #reqs",
        "  i = math.random(n) - 1",
        "end",
        "function request()",
        "  i = i % n + 1",
        "  return reqs[i]",
        "end",
        "function done(summary, latency, requests)",
        "  local e = summary.errors",
        '  io.write(string.format(\'WRK_RESULT {"requests": %d, "duration_us": %d, '
        '"status": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, '
        + ", ".join(f'"p{p:g}": %d' for p in PERCENTILES)
        + "}\\n', summary.requests, summary.duration, e.status, e.connect, e.read, e.write, "
        "e.timeout, " + ", ".join(f"latency:percentile({p:g})" for p in PERCENTILES) + "))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def run(
    name: str,
    base_url: str,
    calls: Sequence[Call],
    *,
    seconds: float,
    concurrency: int,
    threads: int = 2,
    timeout_seconds: int = 120,
) -> Figures:
    """``wrk -t{threads} -c{concurrency} -d{seconds}s`` over ``calls``; its figures.

    wrk counts a response outside 2xx/3xx as a status error; socket errors and timeouts count
    too. The percentiles are wrk's (microsecond histogram), kept on the ``Figures``.
    """
    with tempfile.TemporaryDirectory(prefix="consilium-wrk-") as tmp:
        lua = Path(tmp) / "calls.lua"
        lua.write_text(script(calls, Path(tmp)))
        out = subprocess.run(
            [
                "wrk",
                f"-t{min(threads, concurrency)}",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                f"--timeout={timeout_seconds}s",
                "-s",
                str(lua),
                base_url,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout}")
    got = json.loads(line.removeprefix("WRK_RESULT "))
    errors = sum(got[k] for k in ("status", "connect", "read", "write", "timeout"))
    return Figures(
        name,
        got["requests"],
        got["duration_us"] / 1e6,
        [],
        errors,
        percentiles={p: got[f"p{p:g}"] / 1000 for p in PERCENTILES},
    )
