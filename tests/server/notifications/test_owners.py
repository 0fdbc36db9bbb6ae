"""Parties own their Subscriptions (policy rule ``party-own-subscription``), subscribe with their
own bound tokens, hear only what they may read, and stop hearing once their client is revoked."""

from __future__ import annotations

from typing import Any

import pytest

from server.notifications.store import NotifyStore
from tests.server.cases.kit import Kit, ok
from tests.server.notifications.conftest import subscription
from tests.server.notifications.receiver import Receiver, wait_until
from tests.server.notifications.test_parties import (
    CLINICAL,
    LEAD,
    focus_of,
    for_party,
    kit,
    started,
    subscribe,
    topic_body,
)
from tests.smart_helpers import backend_client, bearer, token_request

__all__ = ["kit"]  # the module-scoped app of test_parties, one per module
INSURER = ("ins-maple-mutual", "insurer")
# An insurer reads status only, but it may manage its own Subscriptions.
INSURER_SCOPE = "system/*.rs system/Subscription.cruds"


def party_client(
    kit: Kit, org: str, role: str, scope: str, **kw: Any
) -> tuple[str, dict[str, str]]:
    """(client id, bearer headers) of a newly registered client bound to a party."""
    client_id, key = backend_client(kit.http, scope, org=org, role=role, **kw)
    r = token_request(kit.http, client_id, key)
    assert r.status_code == 200, r.text
    return client_id, bearer(r.json()["access_token"])


def state(kit: Kit, sid: str) -> dict[str, Any]:
    store = kit.http.app.state.consilium.store  # type: ignore[attr-defined]
    found = NotifyStore(store.db).subs.find_one({"_id": sid})
    assert found is not None
    return found


def status_of(kit: Kit, sid: str) -> str:
    return str(ok(kit.http.get(f"/fhir/Subscription/{sid}", headers=kit.p.trusted))["status"])


# ------------------------------------------------------------------------ what parties hear
def test_an_insurer_subscribes_itself_and_gets_the_status_view(
    kit: Kit, receiver: Receiver
) -> None:
    _, insurer = party_client(kit, *INSURER, INSURER_SCOPE)
    case = started(kit)
    subscribe(
        kit,
        insurer,
        subscription(receiver.url, f"DiagnosticReport?based-on=ServiceRequest/{case.sr}"),
    )
    ok(kit.report(case, kit.p.expert(LEAD)), 201)
    got = receiver.wait_for(1)
    assert len(got) == 1 and got[0].json["status"] == "final"
    assert not set(CLINICAL) & set(got[0].json)
    assert b"Reviewed the whole file" not in got[0].body


def test_an_insurer_follows_its_members_case_status_itself(kit: Kit, receiver: Receiver) -> None:
    _, insurer = party_client(kit, *INSURER, INSURER_SCOPE)
    case = kit.new_case()
    body = topic_body(receiver.url, "case-status-changed", f"Task?focus=ServiceRequest/{case.sr}")
    subscribe(kit, insurer, body)
    receiver.wait_for(1)  # the handshake
    ok(kit.pull(case, kit.p.expert(LEAD)))
    got = focus_of(receiver.wait_for(2))
    assert [t["status"] for t in got] == ["in-progress"]
    assert any(s["code"] == "REDACTED" for s in got[0]["meta"]["security"])


def test_the_expert_is_told_when_a_case_is_assigned_to_it(kit: Kit, receiver: Receiver) -> None:
    body = topic_body(receiver.url, "case-assigned", f"Task?owner=PractitionerRole/{LEAD}")
    subscribe(kit, kit.p.expert(LEAD), body)
    receiver.wait_for(1)
    case = kit.new_case()
    got = focus_of(receiver.wait_for(2))
    assert [t["owner"]["reference"] for t in got] == [f"PractitionerRole/{LEAD}"]
    assert got[0]["focus"]["reference"] == f"ServiceRequest/{case.sr}"


def test_the_clinic_is_told_its_report_is_final(kit: Kit, receiver: Receiver) -> None:
    case = started(kit)
    body = topic_body(
        receiver.url, "report-final", f"DiagnosticReport?based-on=ServiceRequest/{case.sr}"
    )
    subscribe(kit, kit.p.clinic, body)
    receiver.wait_for(1)
    ok(kit.report(case, kit.p.expert(LEAD)), 201)
    got = focus_of(receiver.wait_for(2))
    assert [(r["status"], r["conclusion"]) for r in got] == [("final", "Reviewed the whole file.")]


# ----------------------------------------------------------------------- who may touch which
def others(kit: Kit) -> dict[str, dict[str, str]]:
    return {
        "clinic_b": kit.p.clinic_b,
        "coordinator": kit.p.coordinator,
        "expert": kit.p.expert(LEAD),
        "insurer": party_client(kit, *INSURER, INSURER_SCOPE)[1],
    }


@pytest.mark.parametrize("who", ["clinic_b", "coordinator", "expert", "insurer"])
def test_another_partys_subscription_is_invisible_and_untouchable(
    kit: Kit, receiver: Receiver, who: str
) -> None:
    sid = subscribe(kit, kit.p.clinic, subscription(receiver.url, "DiagnosticReport?status=final"))
    headers = others(kit)[who]
    path = f"/fhir/Subscription/{sid}"
    assert kit.http.get(path, headers=headers).status_code == 404
    assert kit.http.get(f"{path}/$status", headers=headers).status_code == 404
    assert kit.http.get(f"{path}/_history/1", headers=headers).status_code == 404
    found = ok(kit.http.get(f"/fhir/Subscription?_id={sid}", headers=headers))
    assert found.get("total", 0) == 0 and not found.get("entry")
    off = {
        **subscription(receiver.url, "DiagnosticReport?status=final"),
        "id": sid,
        "status": "off",
    }
    r = kit.http.put(path, json=off, headers=headers)
    assert r.status_code == 403 and "party-own-subscription" in r.text
    assert kit.http.delete(path, headers=headers).status_code == 403
    assert status_of(kit, sid) == "active"


@pytest.mark.parametrize("who", ["clinic_b", "coordinator", "expert", "insurer"])
def test_each_party_manages_its_own_subscription(kit: Kit, receiver: Receiver, who: str) -> None:
    headers = others(kit)[who]
    body = subscription(receiver.url, "DiagnosticReport?status=final")
    sid = subscribe(kit, headers, body)
    path = f"/fhir/Subscription/{sid}"
    assert ok(kit.http.get(path, headers=headers))["status"] == "active"
    assert ok(kit.http.get(f"{path}/$status", headers=headers))["type"] == "searchset"
    found = ok(kit.http.get(f"/fhir/Subscription?_id={sid}", headers=headers))
    assert [e["resource"]["id"] for e in found["entry"]] == [sid]
    assert (
        ok(kit.http.put(path, json={**body, "id": sid, "status": "off"}, headers=headers))["status"]
        == "off"
    )
    assert kit.http.delete(path, headers=headers).status_code in (200, 204)
    assert kit.http.get(path, headers=headers).status_code == 410


def test_a_bound_party_naming_another_owner_is_422(kit: Kit, receiver: Receiver) -> None:
    _, insurer = party_client(kit, *INSURER, INSURER_SCOPE)
    body = for_party(
        subscription(receiver.url, "Task?status=completed"), "insurer", "ins-albion-health"
    )
    r = kit.http.post("/fhir/Subscription", json=body, headers=insurer)
    assert r.status_code == 422, r.text


def test_a_provisioned_subscription_belongs_to_the_named_party(
    kit: Kit, receiver: Receiver
) -> None:
    body = for_party(
        subscription(receiver.url, "Task?status=completed"), "insurer", "ins-maple-mutual"
    )
    sid = subscribe(kit, kit.p.trusted, body)
    _, insurer = party_client(kit, *INSURER, INSURER_SCOPE)
    assert kit.http.get(f"/fhir/Subscription/{sid}", headers=insurer).status_code == 200
    assert kit.http.get(f"/fhir/Subscription/{sid}", headers=kit.p.insurer_b).status_code == 404


# --------------------------------------------------------------------------- revoked owners
def revoke(kit: Kit, client_id: str) -> None:
    """Clients are revoked by removing their registration (no new token can be had)."""
    auth = kit.http.app.state.consilium.auth  # type: ignore[attr-defined]
    assert auth.store.Client.objects(pk=client_id).delete() == 1


def test_a_revoked_owner_stops_hearing_and_another_client_of_the_party_resumes(
    kit: Kit, receiver: Receiver
) -> None:
    client_id, insurer = party_client(kit, *INSURER, INSURER_SCOPE)
    case = started(kit)
    body = subscription(receiver.url, f"DiagnosticReport?based-on=ServiceRequest/{case.sr}")
    sid = subscribe(kit, insurer, body)
    revoke(kit, client_id)
    ok(kit.report(case, kit.p.expert(LEAD)), 201)
    assert (
        wait_until(lambda: status_of(kit, sid) == "error", 5, lambda: status_of(kit, sid))
        == "error"
    )
    shown = ok(kit.http.get(f"/fhir/Subscription/{sid}", headers=kit.p.trusted))
    assert "revoked" in shown["error"]
    assert receiver.received() == []
    assert state(kit, sid)["events"] == 1  # counted, kept for whoever takes the subscription over
    _, successor = party_client(kit, *INSURER, INSURER_SCOPE)
    revived = {**body, "id": sid, "status": "requested"}
    ok(kit.http.put(f"/fhir/Subscription/{sid}", json=revived, headers=successor))
    got = receiver.wait_for(1)
    assert [g.number for g in got] == [1]
    assert not set(CLINICAL) & set(got[0].json)


def test_a_client_bound_to_another_party_now_stops_hearing(kit: Kit, receiver: Receiver) -> None:
    client_id, clinic = party_client(kit, "clinic-lakeshore", "clinic", "system/*.cruds")
    case = started(kit)
    sid = subscribe(
        kit,
        clinic,
        subscription(receiver.url, f"DiagnosticReport?based-on=ServiceRequest/{case.sr}"),
    )
    auth = kit.http.app.state.consilium.auth  # type: ignore[attr-defined]
    auth.store.Client.objects(pk=client_id).update(set__organization="clinic-st-brigid")
    ok(kit.report(case, kit.p.expert(LEAD)), 201)
    assert (
        wait_until(lambda: status_of(kit, sid) == "error", 5, lambda: status_of(kit, sid))
        == "error"
    )
    assert receiver.received() == []
