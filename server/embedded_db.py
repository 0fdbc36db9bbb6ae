"""Runs SecantusDB (a MongoDB-wire-compatible server on WiredTiger) as a child process.

Why a child process and not in-process: the app then talks to its database over the wire exactly
as it talks to a production MongoDB, and the database's own threads cannot stall the event loop.
The child is bound to loopback on a free port, is told to stop if its parent dies (PR_SET_PDEATHSIG,
backed by a watchdog in ``embedded_child``), and is stopped with SIGTERM then SIGKILL so no orphan
outlives the server.

The child runs in its own process group. Ctrl-C in a terminal (``make run``) signals the whole
foreground group; a child in that group stopped at the same moment as the server, before the
server had drained its audit queue, and every last write then waited 30 s for a database that was
gone (about a minute of shutdown and a ServerSelectionTimeoutError). Outside the group, only its
owner stops it: ``stop()`` once the app has shut down, or the kernel when the owner dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from server.embedded_child import PARENT_ENV

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


class EmbeddedDatabaseError(RuntimeError):
    pass


_GIB = 1 << 30
_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def _memory_bytes() -> int:
    """Physical memory, or the container's cgroup limit when that is lower (as mongod reads it)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in _CGROUP_LIMITS:
        with contextlib.suppress(OSError, ValueError):
            total = min(total, int(limit_file.read_text().strip()))
    return total


def default_cache_size(memory_bytes: int | None = None) -> str:
    """mongod's WiredTiger rule, half of (RAM - 1 GiB), but never below SecantusDB's 1 GiB.

    SecantusDB's fixed 1 GiB cache livelocks in eviction once a bulk load's working set outgrows
    it (about 90k resources with our indexes); the cache is a ceiling, not an allocation.
    """
    memory = _memory_bytes() if memory_bytes is None else memory_bytes
    return f"{max(1, (memory - _GIB) // 2 // _GIB)}G"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        # SIGTERM, not SIGKILL: SecantusDB buffers its WiredTiger log in memory unless every
        # commit is fsynced, so only a graceful shutdown keeps the last acknowledged writes.
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedDatabase:
    """Start/stop one SecantusDB server with its storage in ``storage_dir``."""

    def __init__(
        self,
        storage_dir: Path,
        *,
        startup_timeout: float = 60.0,
        sync_on_commit: bool = False,
        cache_size: str | None = None,
    ) -> None:
        self.storage_dir = Path(storage_dir)
        self.sync_on_commit = sync_on_commit
        self.cache_size = cache_size or default_cache_size()
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Path = self.storage_dir.parent / "secantusdb.log"

    @property
    def uri(self) -> str:
        if self.port is None:
            raise EmbeddedDatabaseError("embedded database is not running")
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> str:
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        last_error = "unknown"
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_loopback_port()
            cmd = [
                sys.executable,
                "-m",
                "server.embedded_child",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--storage-path",
                str(self.storage_dir),
                "--log-level",
                "WARNING",
                "--cache-size",
                self.cache_size,
                *(["--sync-on-commit"] if self.sync_on_commit else []),
            ]
            log_handle = self._log_file.open("ab")
            try:
                self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    cmd,
                    stdout=log_handle,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                    process_group=0,  # out of the terminal's Ctrl-C: see the module docstring
                    env={**os.environ, "PYTHONUNBUFFERED": "1", PARENT_ENV: str(os.getpid())},
                )
            finally:
                log_handle.close()
            if self._wait_ready():
                log.info("embedded SecantusDB on %s (data in %s)", self.uri, self.storage_dir)
                return self.uri
            last_error = self._tail_log()
            self.stop()
        raise EmbeddedDatabaseError(f"SecantusDB did not start: {last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            client: MongoClient[dict[str, object]] = MongoClient(
                self.uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500
            )
            try:
                client.admin.command("ping")
                return True
            except PyMongoError:
                time.sleep(0.1)
            finally:
                client.close()
        return False

    def _tail_log(self) -> str:
        try:
            return self._log_file.read_text(errors="replace")[-2000:]
        except OSError:
            return "no log"

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> EmbeddedDatabase:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
