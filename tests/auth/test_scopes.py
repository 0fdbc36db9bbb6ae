"""SMART scope grammar (v1 and v2), as tables."""

from __future__ import annotations

import pytest

from auth.scopes import Permission, ScopeError, grants, parse_scope, scope_within

V = frozenset


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("patient/Observation.read", Permission("patient", "Observation", V("rs"), (), 1)),
        ("user/*.*", Permission("user", "*", V("cruds"), (), 1)),
        ("system/*.write", Permission("system", "*", V("cud"), (), 1)),
        ("patient/Observation.rs", Permission("patient", "Observation", V("rs"))),
        ("user/Patient.cruds", Permission("user", "Patient", V("cruds"))),
        ("system/Task.u", Permission("system", "Task", V("u"))),
        (
            "patient/Observation.rs?category=laboratory",
            Permission("patient", "Observation", V("rs"), (("category", "laboratory"),)),
        ),
        (
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            Permission(
                "patient",
                "Observation",
                V("rs"),
                (
                    (
                        "category",
                        "http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
                    ),
                ),
            ),
        ),
        ("openid", None),
        ("fhirUser", None),
        ("launch/patient", None),
        ("offline_access", None),
    ],
)
def test_valid_scopes_parse(scope: str, expected: Permission | None) -> None:
    assert parse_scope(scope) == expected


@pytest.mark.parametrize(
    "scope",
    [
        "patient/Observation.sr",  # letters out of order
        "patient/Observation.rr",  # repeated letter
        "patient/Observation.x",
        "patient/Observation.",
        "clinic/Observation.rs",  # unknown context
        "patient/observation.rs",  # type must be capitalised
        "patient/Observation.read?category=lab",  # v1 with a query
        "patient/Observation.rs?$where=1",  # not a parameter name
        "patient/Observation.rs?category",  # no value
        "admin",
        "",
        "patient/*.rs extra",
    ],
)
def test_invalid_scopes_raise(scope: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(scope)


@pytest.mark.parametrize(
    ("scopes", "interaction", "rtype", "allowed"),
    [
        (["patient/Observation.read"], "read", "Observation", True),
        (["patient/Observation.read"], "search-type", "Observation", True),
        (["patient/Observation.read"], "create", "Observation", False),
        (["patient/Observation.read"], "read", "Condition", False),
        (["user/*.*"], "delete", "Condition", True),
        (["system/*.write"], "read", "Patient", False),
        (["system/*.write"], "update", "Patient", True),
        (["system/*.write"], "patch", "Patient", True),
        (["user/Patient.r"], "search-type", "Patient", False),
        (["user/Patient.s"], "read", "Patient", False),
        (["user/Patient.s"], "history-type", "Patient", True),
        (["user/Patient.r"], "vread", "Patient", True),
        (["user/Patient.c"], "update", "Patient", False),
        (["user/Patient.d"], "delete", "Patient", True),
    ],
)
def test_interactions_need_letters(
    scopes: list[str], interaction: str, rtype: str, allowed: bool
) -> None:
    perms = [p for p in (parse_scope(s) for s in scopes) if p]
    assert bool(grants(perms, interaction, rtype)) is allowed


@pytest.mark.parametrize(
    ("requested", "allowed", "ok"),
    [
        ("system/Patient.rs", ["system/*.cruds"], True),
        ("system/Patient.rs", ["system/Patient.r"], False),
        ("system/Patient.read", ["system/*.rs"], True),
        ("user/Patient.rs", ["system/*.cruds"], False),
        ("patient/Observation.rs?category=laboratory", ["patient/Observation.rs"], True),
        ("patient/Observation.rs", ["patient/Observation.rs?category=laboratory"], False),
        ("openid", ["openid", "fhirUser"], True),
        ("offline_access", ["openid"], False),
        ("bogus", ["bogus"], True),  # exact registered strings pass; parse gate is elsewhere
    ],
)
def test_scope_narrowing(requested: str, allowed: list[str], ok: bool) -> None:
    assert scope_within(requested, allowed) is ok
