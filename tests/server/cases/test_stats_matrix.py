"""The reporting row of the party matrix: who gets ``$second-opinion-stats`` and over which
cases, and, for the same cases, what an insurer reads of their clinical content.

Two cases of clinic A's: a completed one of insurer X's member and an accepted one of insurer
Y's. An insurer gets the figures of its own member's case only (200), never the clinical
content behind them: the request and the report come back redacted, the Condition is refused
(403), and the figures themselves carry no identifier and mask the single-case clinical cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.server.cases.kit import Case, Kit, ok

PAYOR_X, PAYOR_Y = "ins-maple-mutual", "ins-albion-health"

# party -> (HTTP status of the stats call, which of the cases it counts)
STATS: dict[str, tuple[int, frozenset[str]]] = {
    "clinic_a": (200, frozenset({"x", "y"})),  # its own submissions
    "clinic_b": (200, frozenset()),  # none of them are its own
    "expert": (403, frozenset()),
    "other_expert": (403, frozenset()),
    "insurer_x": (200, frozenset({"x"})),  # its member only
    "insurer_y": (200, frozenset({"y"})),
    "coordinator": (200, frozenset({"x", "y"})),  # the network
}
# (party, resource of case x) -> HTTP status of its read; 200 for an insurer means redacted
READS: dict[tuple[str, str], int] = {
    ("insurer_x", "ServiceRequest"): 200,
    ("insurer_x", "DiagnosticReport"): 200,
    ("insurer_x", "Condition"): 403,
    ("insurer_y", "ServiceRequest"): 404,
    ("insurer_y", "DiagnosticReport"): 404,
    ("insurer_y", "Condition"): 403,
}
# What the insurer's redacted view must never show.
CLINICAL_FIELDS = {
    "ServiceRequest": {"reasonCode", "reasonReference", "supportingInfo", "note"},
    "DiagnosticReport": {"conclusion", "conclusionCode", "presentedForm", "result"},
}


@dataclass
class Cases:
    kit: Kit
    x: Case
    y: Case
    report: dict[str, Any]
    period: str
    owner: str

    def headers(self, party: str) -> dict[str, str]:
        p = self.kit.p
        return {
            "clinic_a": p.clinic,
            "clinic_b": p.clinic_b,
            "expert": p.expert(self.owner),
            "other_expert": p.expert("exp-cardiology"),
            "insurer_x": p.insurer,
            "insurer_y": p.insurer_b,
            "coordinator": p.coordinator,
        }[party]

    def stats(self, party: str) -> Any:
        return self.kit.http.get(
            f"/fhir/$second-opinion-stats?period={self.period}", headers=self.headers(party)
        )


@pytest.fixture(scope="module")
def cases(kit: Kit) -> Cases:
    x = kit.new_case(payor=PAYOR_X, plan="MM-GCI-PLUS")
    y = kit.new_case(payor=PAYOR_Y, plan="AHA-CORE")
    owner = kit.task(x)["owner"]["reference"].split("/", 1)[1]
    ok(kit.pull(x, kit.p.expert(owner)))
    report = ok(kit.report(x, kit.p.expert(owner)), 201)
    days = sorted(kit.task(c)["authoredOn"][:10] for c in (x, y))
    return Cases(kit, x, y, report, f"{days[0]}/{days[-1]}", owner)


def total(report: dict[str, Any]) -> int:
    cases = next(g for g in report["group"] if g["code"]["coding"][0]["code"] == "cases")
    return int(cases["population"][0]["count"])


@pytest.mark.parametrize("party", sorted(STATS))
def test_who_gets_the_figures_of_which_cases(cases: Cases, party: str) -> None:
    status, counted = STATS[party]
    r = cases.stats(party)
    assert r.status_code == status, r.text
    if status != 200:
        assert r.json()["resourceType"] == "OperationOutcome"
        return
    assert total(r.json()) == len(counted)


@pytest.mark.parametrize(("party", "rtype"), sorted(READS))
def test_what_an_insurer_reads_of_the_same_case(cases: Cases, party: str, rtype: str) -> None:
    rid = cases.report["id"] if rtype == "DiagnosticReport" else cases.x.ids[rtype]
    r = cases.kit.http.get(f"/fhir/{rtype}/{rid}", headers=cases.headers(party))
    assert r.status_code == READS[(party, rtype)], r.text
    body = r.json()
    if r.status_code != 200:
        assert body["resourceType"] == "OperationOutcome"
        return
    assert not CLINICAL_FIELDS[rtype] & set(body), sorted(body)
    assert "REDACTED" in {s["code"] for s in body["meta"]["security"]}


def test_the_insurers_figures_name_no_patient_request_or_expert(cases: Cases) -> None:
    text = cases.stats("insurer_x").text
    for rid in (*cases.x.ids.values(), cases.report["id"], cases.owner):
        assert rid not in text
    assert "Reviewed the whole file" not in text  # the report's conclusion


def test_the_insurers_single_case_clinical_cells_are_masked(cases: Cases) -> None:
    report = ok(cases.stats("insurer_x"))
    group = next(g for g in report["group"] if g["code"]["coding"][0]["code"] == "cases")
    clinical = [
        s
        for s in group["stratifier"]
        if s["code"][0]["coding"][0]["code"] in ("condition", "outcome")
    ]
    cells = [p for s in clinical for st in s["stratum"] for p in st["population"]]
    assert cells
    assert all("count" not in p for p in cells)
