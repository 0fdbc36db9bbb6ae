"""README "Walk through a case", run as written against a real ``consilium serve --seed`` with
authorization on, so the walkthrough cannot rot.

The README's ``sh`` blocks of that section are run in one ``bash -euo pipefail`` from the
repository root (the committed ``docs/examples`` files), with two substitutions only: the
server's address, and ``.venv/bin/consilium`` → this interpreter's ``-m server.cli`` (the data
dir and port come from ``CONSILIUM_DATA_DIR``/``CONSILIUM_PORT``, as for ``make run``). Every
line the commands print must match the ``# →`` line written under it (``…`` matches anything).
Then the final state is checked over HTTP, independently of the README's own printing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.serve_process import Server

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "## Walk through a case"
DEMO_BASE = "http://127.0.0.1:8080"

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash"
)


def walkthrough() -> str:
    """The shell commands of the README section, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else None]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert blocks, "the walkthrough has no sh blocks"
    return "".join(blocks)


def expected_lines(script: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^# → (.*)$", script, flags=re.M)]


def matches(pattern: str, line: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("…"))
    return re.fullmatch(regex, line.rstrip()) is not None


class SeededServer(Server):
    """``consilium serve --seed`` with authorization on (what ``make run`` starts)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(
            data_dir,
            {"CONSILIUM_AUTH": "on"},
            args=("--seed",),
            drop_env=("CONSILIUM_ADMIN_TOKEN", "CONSILIUM_BASE_URL"),
            cwd=ROOT,
            timeout=300,  # the full demo network is seeded before the server answers
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SeededServer, Path]]:
    data_dir = tmp_path_factory.mktemp("walkthrough") / "data"
    srv = SeededServer(data_dir)
    try:
        yield srv, data_dir
    finally:
        srv.kill()


def token(data_dir: Path, port: int, user: str) -> str:
    out = subprocess.run(
        [
            *(sys.executable, "-m", "server.cli", "token", "--user", user),
            *("--data-dir", str(data_dir), "--port", str(port)),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return out.stdout.strip()


def test_the_section_has_commands_and_expected_output() -> None:
    script = walkthrough()
    assert ".venv/bin/consilium token --user dr.patel" in script
    assert DEMO_BASE in script
    assert len(expected_lines(script)) >= 15


def test_the_readme_walkthrough_runs_as_written(server: tuple[SeededServer, Path]) -> None:
    srv, data_dir = server
    script = walkthrough()
    runnable = script.replace(DEMO_BASE, srv.base).replace(
        ".venv/bin/consilium", f"{sys.executable} -m server.cli"
    )
    env = {
        **os.environ,
        "CONSILIUM_DATA_DIR": str(data_dir),
        "CONSILIUM_PORT": str(srv.port),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CONSILIUM_BASE_URL", None)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", runnable + '\necho "SR=$SR_ID TASK=$TASK_ID"\n'],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    ids = dict(part.split("=", 1) for part in lines.pop().split())
    wanted = expected_lines(script)
    assert len(lines) == len(wanted), "\n".join(lines)
    for pattern, line in zip(wanted, lines, strict=True):
        assert matches(pattern, line), f"expected {pattern!r}, got {line!r}"

    # The state the walkthrough left, read independently.
    clinic = {"Authorization": f"Bearer {token(data_dir, srv.port, 'dr.patel')}"}
    insurer = {"Authorization": f"Bearer {token(data_dir, srv.port, 'insurer.maple')}"}
    fhir = f"{srv.base}/fhir"
    task = httpx.get(f"{fhir}/Task/{ids['TASK']}", headers=clinic).json()
    assert task["status"] == "completed"
    assert task["owner"] == {"reference": "PractitionerRole/exp-oncology-ca"}
    assert task["focus"] == {"reference": f"ServiceRequest/{ids['SR']}"}
    assert httpx.get(f"{fhir}/ServiceRequest/{ids['SR']}", headers=clinic).json()["status"] == (
        "completed"
    )
    seen = httpx.get(f"{fhir}/Task/{ids['TASK']}", headers=insurer).json()
    assert "output" not in seen and "input" not in seen
    assert httpx.get(f"{fhir}/Patient/pat-moreau", headers=insurer).status_code in (403, 404)


def test_the_wildcard_matches_only_around_the_fixed_text() -> None:
    assert matches("accepted … due …", "accepted expert-assigned due 2026-12-16")
    assert not matches("accepted … due …", "rejected expert-assigned due 2026-12-16")
