"""The turnaround histogram's bands (resources/stats.py ``turnaround_band``): half-open, in
business days, named as the guide's second-opinion-stats codes."""

from __future__ import annotations

import json

import pytest

from profiles import definitions_dir
from resources.stats import turnaround_band, turnaround_bands


@pytest.mark.parametrize(
    ("days", "band"),
    [
        (0.0, "turnaround-0-1"),
        (0.99, "turnaround-0-1"),
        (1.0, "turnaround-1-2"),
        (2.5, "turnaround-2-3"),
        (3.0, "turnaround-3-5"),
        (4.99, "turnaround-3-5"),
        (5.0, "turnaround-5-10"),
        (9.99, "turnaround-5-10"),
        (10.0, "turnaround-10-plus"),
        (42.0, "turnaround-10-plus"),
    ],
)
def test_a_turnaround_falls_in_its_half_open_band(days: float, band: str) -> None:
    assert turnaround_band(days) == band


def test_every_band_is_listed_and_counted() -> None:
    assert turnaround_bands([0.5, 0.25, 4, 12]) == {
        "turnaround-0-1": 2, "turnaround-1-2": 0, "turnaround-2-3": 0,
        "turnaround-3-5": 1, "turnaround-5-10": 0, "turnaround-10-plus": 1,
    }  # fmt: skip


def test_every_band_is_a_code_of_the_guide() -> None:
    cs = json.loads((definitions_dir() / "CodeSystem-second-opinion-stats.json").read_text())
    codes = {c["code"] for c in cs["concept"]}
    assert set(turnaround_bands([])) <= codes
    assert cs["count"] == len(cs["concept"])
