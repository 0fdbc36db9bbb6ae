"""Subscription → Spec (pure): criteria through the search parser, payload, headers, secret."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import FhirError
from server.notifications import spec

HOOK = "https://ehr.example.org/hook"


def sub(**kw: Any) -> dict[str, Any]:
    channel = {"type": "rest-hook", "endpoint": HOOK, **kw.pop("channel", {})}
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "reports",
        "criteria": "DiagnosticReport?status=final",
        "channel": channel,
        **kw,
    }


@pytest.mark.parametrize(
    ("criteria", "rtype", "query"),
    [
        ("DiagnosticReport?based-on=ServiceRequest/123&status=final", "DiagnosticReport", None),
        ("Task?status=completed", "Task", "status=completed"),
        ("Communication", "Communication", ""),
        ("Task?focus:ServiceRequest.status=active", "Task", None),
    ],
)
def test_criteria_parse_with_the_search_parser(
    criteria: str, rtype: str, query: str | None
) -> None:
    s, req = spec.parse(sub(criteria=criteria))
    assert s.resource_type == rtype
    assert s.query == (query if query is not None else criteria.split("?", 1)[1])
    assert req.resource_type == rtype


@pytest.mark.parametrize(
    ("criteria", "why"),
    [
        ("Nonsense?status=final", "not a resource type"),
        ("DiagnosticReport?colour=blue", "colour"),
        ("DiagnosticReport?status:fuzzy=final", "fuzzy"),
        ("DiagnosticReport?date=notadate", "date"),
        ("DiagnosticReport?status=final&_sort=date", "result parameters"),
        ("DiagnosticReport?_include=DiagnosticReport:subject", "result parameters"),
        ("", "FHIR search"),
        ("http://example.org/SubscriptionTopic/x", "SubscriptionTopic"),
    ],
)
def test_bad_criteria_are_422(criteria: str, why: str) -> None:
    with pytest.raises(FhirError, match=why) as err:
        spec.parse(sub(criteria=criteria))
    assert err.value.status == 422


@pytest.mark.parametrize(
    ("channel", "payload"),
    [
        ({}, "empty"),
        ({"payload": "application/fhir+json"}, "full-resource"),
        (
            {
                "payload": "application/fhir+json",
                "_payload": {"extension": [{"url": spec.PAYLOAD_EXT, "valueCode": "id-only"}]},
            },
            "id-only",
        ),
    ],
)
def test_payload_content(channel: dict[str, Any], payload: str) -> None:
    assert spec.parse(sub(channel=channel))[0].payload == payload


@pytest.mark.parametrize(
    ("channel", "why"),
    [
        ({"type": "websocket"}, "rest-hook"),
        ({"endpoint": None}, "endpoint"),
        ({"payload": "application/xml"}, "fhir\\+json"),
        ({"header": ["Host: evil"]}, "Host"),
        ({"header": ["X-Consilium-Signature: forged"]}, "X-Consilium-Signature"),
        ({"header": ["bad header"]}, "Name: value"),
        ({"header": ["X-A: b\r\nX-Injected: c"]}, "Name: value"),
    ],
)
def test_bad_channels_are_422(channel: dict[str, Any], why: str) -> None:
    with pytest.raises(FhirError, match=why):
        spec.parse(sub(channel=channel))


def test_headers_are_kept_in_order() -> None:
    s, _ = spec.parse(sub(channel={"header": ["Authorization: Bearer abc", "X-Tenant: 7"]}))
    assert s.headers == (("Authorization", "Bearer abc"), ("X-Tenant", "7"))


def test_the_secret_is_read_and_removed_from_the_stored_resource() -> None:
    ext = {"url": spec.SECRET_EXT, "valueString": "s" * 32}
    body = sub(channel={"extension": [ext]})
    assert spec.secret_of(body) == "s" * 32
    stored = spec.without_secret(body)
    assert "extension" not in stored["channel"]
    assert body["channel"]["extension"] == [ext]  # the input is not changed


def test_a_short_secret_is_422() -> None:
    with pytest.raises(FhirError, match="16 to 256"):
        spec.secret_of(sub(channel={"extension": [{"url": spec.SECRET_EXT, "valueString": "x"}]}))
