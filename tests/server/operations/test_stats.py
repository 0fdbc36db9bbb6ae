"""``$second-opinion-stats`` over HTTP: cases built the way parties build them (kit.py), on a
server clock the test moves, so turnaround, on-hold time and due dates are real transitions.

Every expected figure is derived from the case specs below (``SPECS``), never typed in twice.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from resources.calendar import business_days_after
from resources.stats import turnaround_bands
from server.app import create_app
from tests.demo_copy import seed_demo
from tests.server.cases.kit import FHIR, Case, Kit, make_parties, ok
from tests.smart_helpers import ADMIN, backend_token, bearer

CSC = "https://consilium.health/fhir/CodeSystem/covered-serious-conditions"
STATS = "https://consilium.health/fhir/CodeSystem/second-opinion-stats"
CARDIOLOGY = {"system": "http://snomed.info/sct", "code": "394579002", "display": "Cardiology"}
MAPLE, ALBION = "ins-maple-mutual", "ins-albion-health"
PLANS = {MAPLE: ("MM-GCI-PLUS", 2, 10), ALBION: ("AHA-CORE", 1, 15)}  # allowance, turnaround
CLOCK_MODULES = (
    "server.cases.workflow",
    "server.cases.store",
    "server.cases.hooks",
    "server.operations.case_actions",
    "server.operations.stats",
)
MARCH = datetime(2027, 3, 1, 9, tzinfo=UTC)  # a Monday
AS_OF = datetime(2027, 3, 29, 12, tzinfo=UTC)  # when the report is asked for


def bday(n: float) -> datetime:
    """``n`` business days after Monday 1 March 2027, 09:00 (fractions are parts of a day;
    negative: before it)."""
    whole = math.floor(n)
    day = MARCH.date()
    if whole >= 0:
        day = business_days_after(day, whole)
    else:
        for _ in range(-whole):
            day -= timedelta(days=1)
            while day.weekday() >= 5:
                day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(days=n - whole)


@dataclass(frozen=True)
class Spec:
    """One case: who pays, when it happens (business days after 1 March), where it ends."""

    name: str
    insurer: str = MAPLE
    submit: float = 0
    end: str = "open"  # open | completed | on-hold | rejected | cancelled
    pull: float | None = None
    hold: tuple[float, float] | None = None  # asked, answered
    report: float | None = None
    outcomes: tuple[str, ...] = ("confirm-diagnosis",)
    condition: str = "cancer"
    clinic_b: bool = False
    replaces: str | None = None  # a spec name: same member, a third opinion

    @property
    def turnaround(self) -> float | None:
        if self.end != "completed" or self.report is None:
            return None
        # Offsets are in business days, so the business time on hold is their difference.
        held = self.hold[1] - self.hold[0] if self.hold else 0
        return self.report - self.submit - held


SPECS = (
    Spec("a-quick", pull=0.1, report=3, end="completed"),
    Spec("a-asked", pull=0.1, hold=(1, 3), report=6,
         outcomes=("alternative-diagnosis",), end="completed"),
    Spec("a-late", pull=0.1, report=15, condition="heart-attack", end="completed"),
    Spec("a-open", submit=1),
    Spec("a-third", submit=7, replaces="a-asked"),
    Spec("a-cancelled", submit=2, end="cancelled"),
    Spec("a-rejected", submit=2, end="rejected"),
    Spec("a-waiting", submit=3, pull=3.1, hold=(4, 99), end="on-hold"),
    Spec("b-quick", insurer=ALBION, pull=0.1, report=1, outcomes=("alternative-treatment",),
         clinic_b=True, end="completed"),
    Spec("b-open", insurer=ALBION, submit=2, clinic_b=True),
)  # fmt: skip
BEFORE = Spec("a-february", submit=-3, pull=-2.9, report=-1, end="completed")


class Clock:
    def __init__(self) -> None:
        self.t = MARCH

    def __call__(self) -> datetime:
        return self.t


@dataclass
class World:
    kit: Kit
    clock: Clock
    cases: dict[str, Case] = field(default_factory=dict)
    experts: dict[str, str] = field(default_factory=dict)

    def stats(self, headers: dict[str, str], query: str = "period=2027-03") -> Any:
        self.clock.t = AS_OF
        return self.kit.http.get(f"/fhir/$second-opinion-stats?{query}", headers=headers)

    def report(self, headers: dict[str, str], query: str = "period=2027-03") -> dict[str, Any]:
        return ok(self.stats(headers, query))


def _build(world: World, spec: Spec) -> None:
    kit, clock = world.kit, world.clock
    at = lambda n: setattr(clock, "t", bday(n))  # noqa: E731
    code = [{"system": CSC, "code": spec.condition}]
    kw: dict[str, Any] = {"code": code}
    if spec.condition == "heart-attack":
        kw["performer_type"] = CARDIOLOGY
    if spec.clinic_b:
        kw["headers"] = kit.p.clinic_b
        kw["requester"] = "PractitionerRole/role-doc-st-brigid-walsh"
    at(spec.submit)
    if spec.replaces:
        first = world.cases[spec.replaces]
        coverage = world.cases[spec.replaces].ids["Coverage"]
        case = kit.submit(first.patient, coverage, replaces=first.sr, **kw)
        case.ids["Coverage"] = coverage
    else:
        plan = PLANS[spec.insurer][0]
        patient, coverage = kit.member(
            plan=plan,
            payor=spec.insurer,
            clinic="clinic-st-brigid" if spec.clinic_b else "clinic-lakeshore",
            status="cancelled" if spec.end == "rejected" else "active",
        )
        case = kit.submit(patient, coverage, **kw)
        case.ids["Coverage"] = coverage
    world.cases[spec.name] = case
    task = kit.task(case)
    if spec.end == "rejected":
        assert task["status"] == "rejected", task
        return
    expert_id = task["owner"]["reference"].split("/")[1]
    expert = kit.p.expert(expert_id)
    world.experts[spec.name] = expert_id
    if spec.end == "cancelled":
        at(spec.submit + 0.2)
        ok(kit.op(task["id"], "cancel", kit.p.coordinator, reason="withdrawn"))
        return
    if spec.pull is not None:
        at(spec.pull)
        ok(kit.pull(case, expert))
    if spec.hold is not None:
        at(spec.hold[0])
        question = ok(kit.ask(case, expert), 201)
        if spec.end != "on-hold":
            at(spec.hold[1])
            ok(
                kit.answer(case, question["id"], kit.p.clinic_b if spec.clinic_b else kit.p.clinic),
                201,
            )
    if spec.report is not None:
        at(spec.report)
        ok(kit.report(case, expert, outcomes=spec.outcomes), 201)
    assert kit.task(case)["status"] == ("in-progress" if spec.end == "open" and spec.pull else
                                        "accepted" if spec.end == "open" else spec.end)  # fmt: skip


@pytest.fixture(scope="module")
def world(module_settings: Callable[..., Any], mongo_uri: str) -> Iterator[World]:
    app = create_app(module_settings("stats", auth="on", admin_token=ADMIN))
    seed_demo(app.state.consilium)
    clock = Clock()
    with pytest.MonkeyPatch.context() as mp, TestClient(app, base_url="http://testserver") as c:
        for module in CLOCK_MODULES:
            mp.setattr(f"{module}.now", clock)
        w = World(Kit(c, make_parties(c)), clock)
        for spec in (*SPECS, BEFORE):
            _build(w, spec)
        yield w
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(app.state.consilium.settings.db_name)
    cleanup.close()
    app.state.consilium.store.close()


# ------------------------------------------------------------------------------ reading it
def group(report: dict[str, Any], code: str) -> dict[str, Any]:
    found = [g for g in report["group"] if g["code"]["coding"][0]["code"] == code]
    assert len(found) == 1, [g["code"] for g in report["group"]]
    return found[0]


def count(g: dict[str, Any], population: str) -> int | None:
    for p in g["population"]:
        if p["code"]["coding"][0]["code"] == population:
            return p.get("count")
    raise AssertionError(f"no population {population}")


def strata(report: dict[str, Any], group_code: str, stratifier: str) -> dict[str, int | None]:
    for s in group(report, group_code).get("stratifier", []):
        if s["code"][0]["coding"][0]["code"] == stratifier:
            return {
                (st["value"].get("coding") or [{}])[0].get("code") or st["value"]["text"]:
                st["population"][0].get("count")
                for st in s.get("stratum", [])
            }  # fmt: skip
    raise AssertionError(f"no stratifier {stratifier}")


def of(insurer: str | None) -> list[Spec]:
    return [s for s in SPECS if insurer is None or s.insurer == insurer]


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def due(spec: Spec) -> datetime:
    """The due day's end, moved by an answered pause as the engine moves it."""
    turnaround = PLANS[spec.insurer][2]
    day = business_days_after(bday(spec.submit).date(), turnaround)
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    if spec.hold and spec.end != "on-hold":
        end += bday(spec.hold[1]) - bday(spec.hold[0])
    return end


def breached(spec: Spec) -> bool:
    if spec.end in ("rejected", "cancelled"):
        return False
    if spec.end == "completed":
        return bday(spec.report or 0) > due(spec)
    if spec.end == "on-hold":
        return bday(spec.hold[0] if spec.hold else 0) > due(spec)
    return due(spec) < AS_OF


def is_third(spec: Spec) -> bool:
    return spec.replaces is not None


# ---------------------------------------------------------------------------------- shape
def test_the_report_is_a_summary_measure_report(world: World) -> None:
    from fhir.resources.R4B.measurereport import MeasureReport

    report = world.report(world.kit.p.coordinator)
    MeasureReport.model_validate(report)
    assert (report["status"], report["type"]) == ("complete", "summary")
    assert report["measure"] == "https://consilium.health/fhir/Measure/second-opinion-stats"
    assert report["period"] == {"start": "2027-03-01", "end": "2027-03-31"}
    assert report["reporter"] == {"reference": "Organization/net-consilium-experts"}


def test_post_with_parameters_gives_the_same_figures(world: World) -> None:
    got = world.report(world.kit.p.coordinator)
    world.clock.t = AS_OF
    r = world.kit.http.post(
        "/fhir/$second-opinion-stats",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "periodStart", "valueDate": "2027-03-01"},
                {"name": "periodEnd", "valueDate": "2027-03-31"},
            ],
        },
        headers={**FHIR, **world.kit.p.coordinator},
    )
    assert ok(r)["group"] == got["group"]


# -------------------------------------------------------------------------------- figures
@pytest.mark.parametrize("insurer", [MAPLE, ALBION, None])
def test_counts_by_status(world: World, insurer: str | None) -> None:
    query = "period=2027-03" + (f"&insurer=Organization/{insurer}" if insurer else "")
    report = world.report(world.kit.p.coordinator, query)
    specs = of(insurer)
    assert count(group(report, "cases"), "initial-population") == len(specs)
    expected = Counter(
        "in-progress" if s.end == "open" and s.pull is not None else
        "accepted" if s.end == "open" else s.end
        for s in specs
    )  # fmt: skip
    assert strata(report, "cases", "task-status") == dict(expected)


def test_counts_by_condition_and_outcome_for_the_network(world: World) -> None:
    report = world.report(world.kit.p.coordinator)
    conditions = Counter(s.condition for s in SPECS)  # rejected cases have a condition too
    assert strata(report, "cases", "condition") == dict(conditions)
    outcomes = Counter(o for s in SPECS if s.end == "completed" for o in s.outcomes)
    assert strata(report, "cases", "outcome") == dict(outcomes)


def test_turnaround_median_and_p90_exclude_on_hold_time(world: World) -> None:
    report = world.report(world.kit.p.coordinator)
    days = [t for s in SPECS if (t := s.turnaround) is not None]
    median = group(report, "turnaround-median")
    assert count(median, "measure-population") == len(days)
    assert median["measureScore"]["value"] == pytest.approx(statistics.median(days), abs=0.01)
    assert median["measureScore"]["code"] == "d"
    assert group(report, "turnaround-p90")["measureScore"]["value"] == pytest.approx(
        p90(days), abs=0.01
    )


def test_sla_breaches(world: World) -> None:
    report = world.report(world.kit.p.coordinator)
    sla = group(report, "sla-breaches")
    owed = [s for s in SPECS if s.end not in ("rejected", "cancelled")]  # a report was owed
    assert count(sla, "denominator") == len(owed)
    assert count(sla, "numerator") == sum(1 for s in SPECS if breached(s))
    late = sum(1 for s in SPECS if breached(s) and s.end == "completed")
    assert strata(report, "sla-breaches", "breach-kind").get("completed-late") == late


def test_opinions_used_against_allowed(world: World) -> None:
    report = world.report(world.kit.p.coordinator, f"period=2027-03&insurer=Organization/{MAPLE}")
    opinions = group(report, "opinions")
    specs = of(MAPLE)
    used = [s for s in specs if s.end not in ("rejected", "cancelled") and not is_third(s)]
    # A third opinion is the same member's; the rejected member's cover is not in force.
    members = [s for s in specs if s.replaces is None and s.end != "rejected"]
    assert count(opinions, "numerator") == len(used)
    assert count(opinions, "denominator") == PLANS[MAPLE][1] * len(members)
    assert opinions["measureScore"]["value"] == pytest.approx(
        len(used) / (PLANS[MAPLE][1] * len(members)), abs=1e-4
    )


def test_third_opinion_rate(world: World) -> None:
    report = world.report(world.kit.p.coordinator)
    third = group(report, "third-opinions")
    assert count(third, "numerator") == sum(1 for s in SPECS if is_third(s))
    assert count(third, "denominator") == len(SPECS)


# ---------------------------------------------------------------------------------- period
def test_the_period_filter_keeps_other_months_out(world: World) -> None:
    march = world.report(world.kit.p.coordinator)
    february = world.report(world.kit.p.coordinator, "period=2027-02")
    assert count(group(march, "cases"), "initial-population") == len(SPECS)
    assert count(group(february, "cases"), "initial-population") == 1  # BEFORE
    assert group(february, "turnaround-median")["measureScore"]["value"] == pytest.approx(
        BEFORE.turnaround, abs=0.01
    )


@pytest.mark.parametrize(
    "query",
    ["period=2027-03-01/2027-03-31", "periodStart=2027-03&periodEnd=2027-03", "period=2027-03"],
)
def test_period_spellings_agree(world: World, query: str) -> None:
    report = world.report(world.kit.p.coordinator, query)
    assert count(group(report, "cases"), "initial-population") == len(SPECS)


def test_a_single_day(world: World) -> None:
    report = world.report(world.kit.p.coordinator, "period=2027-03-01")
    on_day = [s for s in SPECS if bday(s.submit).date() == MARCH.date()]
    assert count(group(report, "cases"), "initial-population") == len(on_day)


@pytest.mark.parametrize(
    "query",
    [
        "period=2027-04/2027-03",  # ends before it starts
        "periodStart=2027-03-31&periodEnd=2027-03-01",
        "period=2027-02-30",
        "period=March",
        "period=2027-03&periodStart=2027-03-01",
        "periodStart=2027-03-01",  # no end
        "",  # no period
        "period=2027-03&insurer=Patient/x",
        "period=2027-03&bogus=1",
    ],
)
def test_bad_period_is_400(world: World, query: str) -> None:
    r = world.stats(world.kit.p.coordinator, query)
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


# --------------------------------------------------------------------------------- parties
def test_an_insurer_counts_only_its_own_members(world: World) -> None:
    mine = world.report(world.kit.p.insurer)
    theirs = world.report(world.kit.p.insurer_b)
    assert count(group(mine, "cases"), "initial-population") == len(of(MAPLE))
    assert count(group(theirs, "cases"), "initial-population") == len(of(ALBION))
    assert mine["reporter"] == {"reference": f"Organization/{MAPLE}"}


def test_an_insurer_cannot_ask_for_another_insurers_figures(world: World) -> None:
    r = world.stats(world.kit.p.insurer, f"period=2027-03&insurer=Organization/{ALBION}")
    assert r.status_code == 403, r.text


def test_an_insurer_sees_small_clinical_cells_masked(world: World) -> None:
    report = world.report(world.kit.p.insurer)
    conditions = strata(report, "cases", "condition")
    assert set(conditions) == {s.condition for s in of(MAPLE)}
    assert all(n is None or n >= 5 for n in conditions.values())
    assert all(n is None for n in strata(report, "cases", "outcome").values())
    masked = [
        p
        for s in group(report, "cases")["stratifier"]
        for st in s.get("stratum", [])
        for p in st["population"]
        if "count" not in p
    ]
    assert masked and all(p["extension"][0]["valueCode"] == "masked" for p in masked)


def test_an_insurer_report_names_no_patient_case_or_expert(world: World) -> None:
    text = world.stats(world.kit.p.insurer).text
    for name, case in world.cases.items():
        for rid in case.ids.values():
            assert rid not in text, name
    for expert in world.experts.values():
        assert expert not in text


def test_a_clinic_sees_its_own_cases(world: World) -> None:
    report = world.report(world.kit.p.clinic_b)
    assert count(group(report, "cases"), "initial-population") == sum(
        1 for s in SPECS if s.clinic_b
    )
    assert report["reporter"] == {"reference": "Organization/clinic-st-brigid"}


def test_a_specialist_is_refused(world: World) -> None:
    r = world.stats(world.kit.p.expert("exp-oncology-ca"))
    assert r.status_code == 403, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_a_trusted_integration_sees_the_network(world: World) -> None:
    report = world.report(world.kit.p.trusted)
    assert count(group(report, "cases"), "initial-population") == len(SPECS)
    assert report["reporter"]["display"]


def test_put_is_not_allowed(world: World) -> None:
    r = world.kit.http.put(
        "/fhir/$second-opinion-stats?period=2027-03", json={}, headers=world.kit.p.coordinator
    )
    assert r.status_code == 405, r.text


def test_the_capability_statement_lists_the_system_operation(world: World) -> None:
    rest = ok(world.kit.http.get("/fhir/metadata"))["rest"][0]
    assert {
        "name": "second-opinion-stats",
        "definition": "https://consilium.health/fhir/OperationDefinition/second-opinion-stats",
    } in rest["operation"]


def test_a_client_whose_scopes_do_not_reach_the_cases_is_refused(world: World) -> None:
    headers = bearer(backend_token(world.kit.http, "system/Coverage.rs"))
    r = world.stats(headers)
    assert r.status_code == 403, r.text


def test_an_unknown_insurer_has_no_cases(world: World) -> None:
    report = world.report(world.kit.p.coordinator, "period=2027-03&insurer=Organization/nobody")
    assert count(group(report, "cases"), "initial-population") == 0
    assert "measureScore" not in group(report, "turnaround-median")


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Parameters", "parameter": [{"name": "period", "valueInteger": 5}]},
        {"resourceType": "Parameters", "parameter": [{"name": "periodStart", "valueDate": "x"}]},
        {"resourceType": "Patient"},
        [1, 2],
    ],
)
def test_a_malformed_body_is_400(world: World, body: Any) -> None:
    world.clock.t = AS_OF
    r = world.kit.http.post(
        "/fhir/$second-opinion-stats", json=body, headers={**FHIR, **world.kit.p.coordinator}
    )
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_the_report_follows_its_measure(world: World) -> None:
    """Every group, population and stratifier of the report is one the Measure describes."""
    from fhir.resources.R4B.measure import Measure

    from profiles import definitions_dir

    measure = json.loads(
        (definitions_dir() / "Measure-second-opinion-stats.json").read_text(encoding="utf-8")
    )
    Measure.model_validate(measure)
    report = world.report(world.kit.p.coordinator)
    assert report["measure"] == measure["url"]

    def shape(groups: list[dict[str, Any]]) -> list[tuple[str, list[str], list[str]]]:
        return [
            (
                g["code"]["coding"][0]["code"],
                [p["code"]["coding"][0]["code"] for p in g["population"]],
                [s["code"]["coding"][0]["code"] if "coding" in s["code"] else
                 s["code"][0]["coding"][0]["code"] for s in g.get("stratifier", [])],
            )
            for g in groups
        ]  # fmt: skip

    assert shape(report["group"]) == shape(measure["group"])


def test_turnaround_bands_are_the_histogram_of_the_completed_cases(world: World) -> None:
    """The turnaround-median group's turnaround-band stratifier (tracker dashboard histogram):
    every band listed, zeros included, each completed case in the band of its turnaround."""
    report = world.report(world.kit.p.coordinator)
    days = [t for s in SPECS if (t := s.turnaround) is not None]
    bands = strata(report, "turnaround-median", "turnaround-band")
    assert list(bands) == [
        "turnaround-0-1", "turnaround-1-2", "turnaround-2-3",
        "turnaround-3-5", "turnaround-5-10", "turnaround-10-plus",
    ]  # fmt: skip
    assert bands == turnaround_bands(days)
    assert sum(n or 0 for n in bands.values()) == len(days)
