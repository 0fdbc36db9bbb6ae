"""OAuth security events as AuditEvents: the typed AuthEvent the core fills in becomes a DICOM
"User Authentication" / "Security Alert" record naming client and user, never credentials."""

from __future__ import annotations

import pytest

from auth.audit import AuthEvent, AuthEventKind, auth_facts, build_audit_event


@pytest.mark.parametrize(
    ("kind", "event_type", "subtype"),
    [
        ("oauth-token", "110114", "110122"),
        ("oauth-login", "110114", "110122"),
        ("oauth-revoke", "110114", "110123"),
        ("oauth-register", "110113", "110136"),
    ],
)
def test_each_oauth_event_has_its_dicom_codes(
    kind: AuthEventKind, event_type: str, subtype: str
) -> None:
    facts = auth_facts(AuthEvent(kind), status=200, recorded="2026-01-01T00:00:00Z")
    event = build_audit_event(facts, "e1")
    assert (event["type"]["code"], event["subtype"][0]["code"]) == (event_type, subtype)


def test_a_signed_in_user_is_the_requestor_beside_the_client() -> None:
    facts = auth_facts(
        AuthEvent("oauth-login", client_id="app-1", user="PractitionerRole/r1"),
        status=302,
        recorded="2026-01-01T00:00:00Z",
        source_ip="10.0.0.1",
        request_id="req-1",
    )
    event = build_audit_event(facts, "e1")
    client, user = event["agent"]
    assert client["who"]["identifier"]["value"] == "app-1" and client["requestor"] is False
    assert user == {"who": {"reference": "PractitionerRole/r1"}, "requestor": True}
    assert event["outcome"] == "0" and event["outcomeDesc"] == "HTTP 302 POST"


def test_a_refusal_before_the_client_is_known_is_anonymous() -> None:
    facts = auth_facts(AuthEvent("oauth-token"), status=401, recorded="2026-01-01T00:00:00Z")
    event = build_audit_event(facts, "e1")
    assert event["agent"][0]["who"]["identifier"]["value"] == "anonymous"
    assert event["outcome"] == "4"
