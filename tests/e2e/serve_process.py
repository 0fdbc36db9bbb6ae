"""A real ``consilium serve`` process for end-to-end tests, and process-table helpers.

The server runs in a session of its own so a test can signal its whole process group, as a
terminal's Ctrl-C does (``make run``), and never the test runner's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.embedded_db import free_loopback_port


def children(pid: int) -> list[int]:
    try:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
        ).stdout
    except FileNotFoundError:  # pragma: no cover - ps missing
        return []
    return [int(x) for x in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still "exists"; read its state
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


class Server:
    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        *,
        args: tuple[str, ...] = (),
        drop_env: tuple[str, ...] = (),
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> None:
        """``args`` extra ``serve`` arguments (``--seed``); ``drop_env`` variables of this
        process the server must not inherit."""
        self.port = free_loopback_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full_env = {
            **os.environ,
            "CONSILIUM_AUTH": "off",
            "CONSILIUM_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        for name in ("CONSILIUM_MONGODB_URI", *drop_env):
            full_env.pop(name, None)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "serve.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "serve",
                    *args,
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(data_dir),
                ],
                env=full_env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text(errors="replace"))
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError("server did not become healthy")

    def stop(self, sig: int = signal.SIGTERM) -> list[int]:
        kids = children(self.proc.pid)
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        return kids

    def kill(self) -> None:
        """Last-resort cleanup: the server's group, and the database child's own group."""
        for pid in [*children(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
