"""The seed's progress bar: one redrawn line on a terminal, a few plain lines elsewhere."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pymongo import MongoClient

from profiles.conformance import conformance_resources
from seed.progress import ProgressBar

ROOT = Path(__file__).resolve().parents[2]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_redraws_one_line_and_ends_it() -> None:
    out = Terminal()
    bar = ProgressBar(stream=out, width=10)
    for done in (0, 5, 10):
        bar(done, 10)
    text = out.getvalue()
    assert text.count("\r") == 3
    assert text.count("\n") == 1 and text.endswith("\n")
    assert "[#####-----] 5/10" in text
    assert "[##########] 10/10" in text


def test_elsewhere_it_prints_a_line_per_step_not_per_call() -> None:
    out = io.StringIO()
    bar = ProgressBar(stream=out, every=25)
    for done in range(0, 1001):
        bar(done, 1000)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "seed: 0/1000 resources (0%)"
    assert lines[-1] == "seed: 1000/1000 resources (100%)"
    assert len(lines) == 5  # 0, 25, 50, 75, 100 %


@pytest.mark.parametrize("total", [0, 1])
def test_an_empty_or_tiny_seed_is_complete(total: int) -> None:
    out = io.StringIO()
    ProgressBar(stream=out)(total, total)
    assert out.getvalue().endswith("(100%)\n")


def test_consilium_seed_reports_progress_on_stderr_and_counts_on_stdout(
    mongo_uri: str, tmp_path: Path
) -> None:
    name = f"t_cli_seed_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CONSILIUM_MONGODB_URI": mongo_uri,
        "CONSILIUM_DB_NAME": name,
        "PYTHONPATH": str(ROOT),
    }
    try:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "server.cli", "seed", "--conformance-only"),
                *("--data-dir", str(tmp_path / "data")),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=300,
            check=True,
        )
    finally:
        client: MongoClient[dict[str, object]] = MongoClient(mongo_uri)
        client.drop_database(name)
        client.close()
    total = len(list(conformance_resources()))
    assert f"seed: {total}/{total} resources (100%)" in done.stderr  # not a TTY: plain lines
    assert done.stdout.splitlines() == [f"created: {total}", "updated: 0", "unchanged: 0"]
