"""The stored-document layout: one pure builder for current and history documents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.search.keys import bucket_of
from server.storage import build_documents

TS = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_current_document_of_a_version() -> None:
    body = {"resourceType": "Patient", "id": "p1"}
    docs = build_documents(
        "Patient", "p1", 2, TS, body, interaction="update", idx={"gender": ["female"]}, acl={}
    )
    assert docs.current == {
        "_id": "p1",
        "vid": 2,
        "ts": TS,
        "deleted": False,
        "resource": body,
        "idx": {"gender": ["female"]},
        "ks": ["gender\x1efemale"],  # the one search index's keys (server/search/keys.py)
        "kw": ["gender\x1efemale\x1d" + bucket_of("p1")],  # its windows (the id's bucket)
        "kb": bucket_of("p1"),
        "acl": {},
    }


def test_history_document_of_a_version() -> None:
    body = {"resourceType": "Patient", "id": "p1"}
    acl = {"orgs": ["o1"]}
    docs = build_documents("Patient", "p1", 3, TS, body, interaction="patch", idx={}, acl=acl)
    assert docs.history == {
        "_id": "Patient/p1/3",
        "type": "Patient",
        "rid": "p1",
        "vid": 3,
        "ts": TS,
        "method": "PATCH",
        "deleted": False,
        "resource": body,
        "acl": acl,
    }


def test_a_deletion_has_no_resource() -> None:
    docs = build_documents("Patient", "p1", 4, TS, None, interaction="delete", idx={}, acl={})
    assert docs.current["deleted"] and docs.current["resource"] is None
    assert docs.history["method"] == "DELETE" and docs.history["deleted"]


@pytest.mark.parametrize(("refs", "present"), [(None, False), ([], True), (["Patient/p1"], True)])
def test_refs_are_kept_only_when_the_integrity_hook_gave_them(
    refs: list[str] | None, present: bool
) -> None:
    docs = build_documents(
        "Observation", "o1", 1, TS, {}, interaction="create", idx={}, acl={}, refs=refs
    )
    assert ("refs" in docs.current) is present
    assert "refs" not in docs.history


def test_an_unknown_interaction_is_refused() -> None:
    with pytest.raises(KeyError):
        build_documents("Patient", "p1", 1, TS, {}, interaction="read", idx={}, acl={})
