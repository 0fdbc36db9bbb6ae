"""Party-owned Subscriptions (rule ``party-own-subscription``): the owner fact recorded at create
(``auth.acl.subscriber_of``) and the policy's decisions on it, as pure tables."""

from __future__ import annotations

from typing import Any

import pytest

from auth.acl import SUBSCRIPTION_OWNER, compute_acl, party_key, subscriber_of
from auth.principal import Principal
from server.notifications.spec import OWNER_EXT
from tests.auth.test_policy import FACTS, POLICY

CLINIC_A = party_key("clinic", "clinic-a", None)
INSURER_X = party_key("insurer", "insurer-x", None)
EXPERT_1 = party_key("specialist", "network-s", "expert-1")


def who(
    role: str | None, org: str | None = None, scopes: str = "system/*.cruds", **kw: Any
) -> Principal:
    return Principal.build("c", tuple(scopes.split()), organization=org, role=role, **kw)


PARTIES = {
    "clinic-a": who("clinic", "clinic-a"),
    "clinic-b": who("clinic", "clinic-b"),
    "insurer-x": who("insurer", "insurer-x", "system/*.rs system/Subscription.cruds"),
    "expert-1": who("specialist", "network-s", practitioner_role="expert-1"),
    "expert-2": who("specialist", "network-s", practitioner_role="expert-2"),
    "coordinator": who("coordinator", "net"),
    "trusted": who(None),
}


def provisioned(role: str, org: str, prole: str | None = None) -> dict[str, Any]:
    subs: list[dict[str, Any]] = [
        {"url": "role", "valueCode": role},
        {"url": "organization", "valueReference": {"reference": f"Organization/{org}"}},
    ]
    if prole:
        subs.append(
            {
                "url": "practitionerRole",
                "valueReference": {"reference": f"PractitionerRole/{prole}"},
            }
        )
    return {
        "resourceType": "Subscription",
        "extension": [{"url": SUBSCRIPTION_OWNER, "extension": subs}],
    }


PLAIN = {"resourceType": "Subscription", "status": "requested"}


def test_the_owner_extension_is_the_notification_modules() -> None:
    assert SUBSCRIPTION_OWNER == OWNER_EXT


@pytest.mark.parametrize(
    ("writer", "resource", "previous", "expected"),
    [
        ("clinic-a", PLAIN, {}, CLINIC_A),
        ("insurer-x", PLAIN, {}, INSURER_X),
        ("expert-1", PLAIN, {}, EXPERT_1),
        ("trusted", PLAIN, {}, None),  # a trusted integration's own: no party's
        ("trusted", provisioned("insurer", "insurer-x"), {}, INSURER_X),
        ("trusted", provisioned("specialist", "network-s", "expert-1"), {}, EXPERT_1),
        ("trusted", provisioned("clinic", "clinic-a"), {"subscriber": INSURER_X}, CLINIC_A),
        ("trusted", provisioned("patient", "x"), {}, None),  # not a party role
        ("trusted", PLAIN, {"subscriber": INSURER_X}, INSURER_X),  # kept across versions
        (
            "clinic-a",
            provisioned("insurer", "insurer-x"),
            {},
            CLINIC_A,
        ),  # a bound writer names none
        ("clinic-a", PLAIN, {"subscriber": INSURER_X}, INSURER_X),  # kept (the policy refuses it)
    ],
)
def test_the_subscriber_recorded(
    writer: str, resource: dict[str, Any], previous: dict[str, Any], expected: str | None
) -> None:
    assert subscriber_of(PARTIES[writer], resource, previous) == expected


def test_a_clinic_writing_a_specialists_key_is_its_own_role() -> None:
    """A practitioner role names a specialist only: a clinic user's role does not split it."""
    assert party_key("clinic", "clinic-a", "doc-1") == CLINIC_A


def acl_of(writer: str) -> dict[str, Any]:
    return compute_acl("Subscription", "s1", PLAIN, PARTIES[writer], None, FACTS.patient_orgs)


OWNED_BY = ["clinic-a", "insurer-x", "expert-1", "coordinator"]


@pytest.mark.parametrize("owner", OWNED_BY)
@pytest.mark.parametrize(
    "reader", ["clinic-a", "clinic-b", "insurer-x", "expert-1", "expert-2", "coordinator"]
)
def test_only_the_owning_party_reads_a_subscription(owner: str, reader: str) -> None:
    acl = acl_of(owner)
    assert POLICY.can_read(PARTIES[reader], "Subscription", PLAIN, acl) is (reader == owner)


@pytest.mark.parametrize("owner", OWNED_BY)
@pytest.mark.parametrize(
    "writer", ["clinic-a", "clinic-b", "insurer-x", "expert-1", "expert-2", "coordinator"]
)
@pytest.mark.parametrize("interaction", ["update", "delete"])
def test_only_the_owning_party_writes_a_subscription(
    owner: str, writer: str, interaction: str
) -> None:
    old = acl_of(owner)
    resource = None if interaction == "delete" else PLAIN
    new = compute_acl("Subscription", "s1", resource, PARTIES[writer], old, FACTS.patient_orgs)
    verdict = POLICY.check_write(
        PARTIES[writer], interaction, "Subscription", resource, new, old, PLAIN
    )
    assert bool(verdict) is (writer == owner)
    assert verdict.rule == "party-own-subscription" or (interaction == "delete" and writer == owner)


@pytest.mark.parametrize("writer", ["clinic-a", "insurer-x", "expert-1", "coordinator"])
def test_every_party_creates_its_own(writer: str) -> None:
    new = acl_of(writer)
    verdict = POLICY.check_write(PARTIES[writer], "create", "Subscription", PLAIN, new, None, None)
    assert verdict and verdict.rule == "party-own-subscription"


def test_the_scopes_still_bound_the_rule() -> None:
    reader = who("insurer", "insurer-x", "system/*.rs")
    assert POLICY.decide(reader, "create", "Subscription").rule == "scope"
    assert POLICY.decide(reader, "read", "Subscription").rule == "party-own-subscription"


@pytest.mark.parametrize(
    ("reader", "expected"),
    [
        (
            "clinic-a",
            {
                "$or": [
                    {"acl.subscriber": CLINIC_A},
                    {"acl.subscriber": {"$exists": False}, "acl.orgs": "clinic-a"},
                ]
            },
        ),
        ("insurer-x", {"acl.subscriber": INSURER_X}),
        ("expert-1", {"acl.subscriber": EXPERT_1}),
        ("coordinator", {"acl.subscriber": party_key("coordinator", "net", None)}),
        ("trusted", {}),
    ],
)
def test_the_search_narrowing(reader: str, expected: dict[str, Any]) -> None:
    assert POLICY.access_filter(PARTIES[reader], "Subscription") == expected


@pytest.mark.parametrize(
    ("reader", "expected"), [("clinic-a", True), ("clinic-b", False), ("coordinator", False)]
)
def test_a_subscription_stored_before_the_owner_fact_stays_its_clinics(
    reader: str, expected: bool
) -> None:
    legacy = {"patients": [], "orgs": ["clinic-a"]}
    assert POLICY.can_read(PARTIES[reader], "Subscription", PLAIN, legacy) is expected
