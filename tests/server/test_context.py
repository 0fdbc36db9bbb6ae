"""The per-request security context: the policy is asked once per request and type.

A real ``StorePolicy`` subclass counts its own evaluations (access filters per type, and the
coarse ``decide`` calls made from outside the policy itself); the app's MongoClient reports its
commands to a pymongo CommandListener, so round trips are counted on the wire.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from auth.policy import Verdict
from auth.principal import Principal
from server.access import StorePolicy
from server.context import SecurityContext
from server.repository import Repository
from tests.server.search.plans import Recorder, recording_app
from tests.smart_helpers import ADMIN, backend_token, bearer, load_parties

READ = "system/*.rs"


class CountingPolicy(StorePolicy):
    """The server's policy, counting what it computes (``depth`` separates the coarse checks
    callers make from the ones the policy makes inside its own per-resource decisions)."""

    def __init__(self, repo: Repository) -> None:
        super().__init__(repo)
        self.filters: Counter[str] = Counter()
        self.coarse: Counter[tuple[str, str]] = Counter()
        self.depth = 0

    def access_filter(self, p: Principal | None, resource_type: str) -> dict[str, Any]:
        self.filters[resource_type] += 1
        self.depth += 1
        try:
            return super().access_filter(p, resource_type)
        finally:
            self.depth -= 1

    def check_read(
        self,
        p: Principal | None,
        resource_type: str,
        resource: dict[str, Any],
        acl: dict[str, Any] | None = None,
    ) -> Verdict:
        self.depth += 1
        try:
            return super().check_read(p, resource_type, resource, acl)
        finally:
            self.depth -= 1

    def decide(self, p: Principal | None, interaction: str, resource_type: str) -> Verdict:
        if self.depth == 0:
            self.coarse[(interaction, resource_type)] += 1
        return super().decide(p, interaction, resource_type)


@pytest.fixture(scope="module")
def world(module_settings: Any) -> Iterator[dict[str, Any]]:
    settings = module_settings("context", auth="on", admin_token=ADMIN)
    app, recorder = recording_app(settings)
    state = app.state.consilium
    with TestClient(app) as c:
        load_parties(c)
        policy = CountingPolicy(Repository(state.store, state.hooks))
        state.policy = policy
        token = backend_token(c, READ, org="clinic-a", role="clinic")
        yield {"client": c, "policy": policy, "recorder": recorder, "token": token}
    state.store.close()


def _get(world: dict[str, Any], url: str) -> Any:
    policy: CountingPolicy = world["policy"]
    policy.filters.clear()
    policy.coarse.clear()
    world["recorder"].finds.clear()
    r = world["client"].get(url, headers=bearer(world["token"]))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    "url",
    [
        "/fhir/Condition?patient=pat-a&_include=Condition:subject",
        "/fhir/Patient?_id=pat-a,pat-b&_revinclude=Condition:subject&_revinclude=Observation:subject",
        "/fhir/Patient/pat-a/Observation",
        "/fhir/Observation?subject:Patient.identifier=urn:x|nothing",
        "/fhir/ServiceRequest/sr-a/$case-bundle",
    ],
)
def test_a_request_computes_each_access_filter_once(world: dict[str, Any], url: str) -> None:
    _get(world, url)
    policy: CountingPolicy = world["policy"]
    assert policy.filters, url
    assert set(policy.filters.values()) == {1}, policy.filters


def test_a_paged_search_computes_the_access_filter_once_per_page(world: dict[str, Any]) -> None:
    first = _get(world, "/fhir/Observation?_count=1")
    assert world["policy"].filters == Counter({"Observation": 1})
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    _get(world, following.replace("http://testserver", ""))
    assert world["policy"].filters == Counter({"Observation": 1})


def test_a_read_makes_one_coarse_authorization_check(world: dict[str, Any]) -> None:
    _get(world, "/fhir/Patient/pat-a")
    assert world["policy"].coarse == Counter({("read", "Patient"): 1})


def test_a_search_makes_one_coarse_authorization_check(world: dict[str, Any]) -> None:
    _get(world, "/fhir/Patient?_id=pat-a")
    assert world["policy"].coarse == Counter({("search-type", "Patient"): 1})


def test_a_read_is_one_database_round_trip(world: dict[str, Any]) -> None:
    _get(world, "/fhir/Patient/pat-a")
    recorder: Recorder = world["recorder"]
    assert [cmd["find"] for _, cmd in recorder.finds] == ["Patient"]


def test_a_clinic_search_is_one_find_for_the_matches_and_their_page(
    world: dict[str, Any],
) -> None:
    """Once the first window's width is known (the field's density: execute._window_rows); the
    page is disclosed from the documents the window read (``fetch_visible``'s ``read``)."""
    _get(world, "/fhir/Observation?subject=Patient/pat-b")
    bundle = _get(world, "/fhir/Observation?subject=Patient/pat-a")
    assert bundle["entry"]
    recorder: Recorder = world["recorder"]
    assert [cmd["find"] for _, cmd in recorder.finds] == ["Observation"]


# ------------------------------------------------------------------------------- pure parts
def test_the_system_context_narrows_nothing() -> None:
    ctx = SecurityContext.system()
    assert not ctx.enforcing
    assert ctx.access_filter("Patient") == {}
    assert ctx.decide("delete", "Patient")
    assert ctx.can_read("Patient", {"resourceType": "Patient", "id": "p"})


def test_the_context_names_the_party_and_scopes() -> None:
    p = Principal.build("c1", ("system/*.rs",), organization="clinic-a", role="clinic")
    ctx = SecurityContext(p)
    assert ctx.scopes == ("system/*.rs",)
    assert ctx.party is not None and (ctx.party.role, ctx.party.organization) == (
        "clinic",
        "clinic-a",
    )
    assert SecurityContext(Principal.build("c2", ())).party is None
