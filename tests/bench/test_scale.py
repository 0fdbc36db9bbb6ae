"""The scale benchmark cannot rot: its data plan, and its quickest mode end to end."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from bench import scale


@pytest.mark.parametrize(("rare", "many"), [(3, 100), (10, 10_000)])
def test_first_block_holds_both_queried_families_in_full(rare: int, many: int) -> None:
    plan = scale.Plan(rare, many)
    first = itertools.islice(scale.stream(plan), plan.base_size)
    families = Counter(r["name"][0]["family"] for r in first if r["resourceType"] == "Patient")
    assert (families[scale.RARE], families[scale.MANY]) == (rare, many)


def test_later_patients_never_match_the_queried_families() -> None:
    plan = scale.Plan(3, 100)
    later = [plan.family(j) for j in range(plan.rare + plan.many, 20_000)]
    assert not [f for f in later if f.startswith((scale.RARE, scale.MANY))]


@pytest.mark.parametrize(
    ("j", "observed"), [(0, True), (2, True), (3, False), (102, False), (103, True)]
)
def test_only_the_many_family_has_no_observations(j: int, observed: bool) -> None:
    assert scale.Plan(3, 100).has_observations(j) is observed


@pytest.mark.slow
def test_quick_mode_prints_every_figure_at_every_size(capsys: pytest.CaptureFixture[str]) -> None:
    # Also the loader's layout check: the run stops if the documents it builds differ from
    # what the server stores for the same resources written through HTTP.
    # The threaded httpx load: wrk runs each figure for whole seconds (tests/bench/test_wrk_load.py)
    assert scale.main(["--quick", "--load", "python"]) == 0
    table = capsys.readouterr().out.split("FHIR/floor:")[0].splitlines()
    for figure in ("search family=", "search Observation?subject", "read", "create", "ingest"):
        rows = [line for line in table if line.startswith(figure)]
        assert len(rows) >= 2, (figure, table)
