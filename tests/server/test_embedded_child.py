"""The embedded database child's watchdog: a graceful stop that hangs is ended by SIGKILL."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.e2e.test_restart import _alive

# A child whose SIGTERM handling never finishes (SecantusDB's handler can deadlock), watched
# with a 1 s grace, started by a parent that prints the child's pid and then waits.
CHILD = (
    "import os, signal, time\n"
    "from server.embedded_child import start_watchdog\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "start_watchdog(os.getppid(), 1.0, has_pdeathsig=False)\n"
    "time.sleep(60)\n"
)
PARENT = (
    "import subprocess, sys, time\n"
    f"c = subprocess.Popen([sys.executable, '-c', {CHILD!r}])\n"
    "print(c.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_child_that_ignores_sigterm_is_killed_once_its_parent_is_gone() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.5)
    assert _alive(child)
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child)


def test_a_child_lives_while_its_parent_does() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        time.sleep(2.0)  # longer than the grace: the watchdog must not fire with the parent alive
        assert _alive(child)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        subprocess.run(["kill", "-9", str(child)], check=False)
