"""The embedded database child: SecantusDB's own CLI, plus a watchdog on the parent.

PR_SET_PDEATHSIG (set before exec, see ``embedded_db``) makes the kernel send SIGTERM when the
server dies, and SecantusDB then stops gracefully, keeping its last commits. Its SIGTERM handler
can deadlock, though: it sets an ``Event`` whose lock the interrupted main thread may hold (it
polls that ``Event`` in a loop). CI caught such a database still running minutes after its
server was killed. So a watchdog thread bounds the graceful stop: once the parent is gone it
waits ``CONSILIUM_EMBEDDED_STOP_GRACE`` seconds (default 20; a normal stop takes about 4) and
then kills the process. Where there is no PDEATHSIG it sends the SIGTERM itself.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PARENT_ENV = "CONSILIUM_PARENT_PID"
GRACE_ENV = "CONSILIUM_EMBEDDED_STOP_GRACE"
DEFAULT_GRACE_SECONDS = 20.0


def _watch(parent: int, grace: float, has_pdeathsig: bool) -> None:
    while os.getppid() == parent:
        time.sleep(0.25)
    if not has_pdeathsig:
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os.kill(os.getpid(), signal.SIGKILL)


def start_watchdog(parent: int, grace: float, *, has_pdeathsig: bool) -> threading.Thread:
    thread = threading.Thread(
        target=_watch, args=(parent, grace, has_pdeathsig), name="consilium-parent", daemon=True
    )
    thread.start()
    return thread


def main() -> int:
    parent = int(os.environ.get(PARENT_ENV) or os.getppid())
    grace = float(os.environ.get(GRACE_ENV) or DEFAULT_GRACE_SECONDS)
    start_watchdog(parent, grace, has_pdeathsig=sys.platform.startswith("linux"))
    from secantus.cli import main as secantus_main

    return int(secantus_main(sys.argv[1:]))


if __name__ == "__main__":
    raise SystemExit(main())
