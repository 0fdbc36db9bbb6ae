"""The resource side of the SMART authorize step (``auth.authorize.PatientDirectory``).

The auth core asks two questions while a user signs in to a standalone or EHR launch: may this
user see Patient/x (the launch patient, or the one they typed), and which patients may they
choose from (the picker). Both are answered through the repository and the search engine as
that user, so the access policy that guards every FHIR read decides here too, and nothing
outside the repository touches the resource collections.
"""

from __future__ import annotations

from typing import Any

from auth.principal import Principal
from server.context import SecurityContext
from server.deps import AppState
from server.errors import FhirError
from server.repository import Repository
from server.search import params
from server.search.execute import run


def patient_label(patient: dict[str, Any]) -> str:
    """``Given Family · born 1970-01-01 · id`` from whatever of that the resource has."""
    names = patient.get("name") or []
    name = names[0] if names and isinstance(names[0], dict) else {}
    text = (
        name.get("text")
        or " ".join(
            [*[str(g) for g in name.get("given") or []], str(name.get("family") or "")]
        ).strip()
    )
    parts = [text or "(no name)"]
    if patient.get("birthDate"):
        parts.append(f"born {patient['birthDate']}")
    parts.append(str(patient.get("id", "")))
    return " · ".join(parts)


class RepositoryPatients:
    def __init__(self, state: AppState) -> None:
        self.state = state

    def _repo(self, principal: Principal) -> Repository:
        security = SecurityContext(principal, self.state.policy)
        return Repository(self.state.store, self.state.hooks, security=security)

    def may_see(self, principal: Principal, patient_id: str) -> bool:
        try:
            self._repo(principal).read("Patient", patient_id)
        except FhirError:  # unknown, deleted, out of scope or not this party's patient
            return False
        return True

    def choices(self, principal: Principal, limit: int) -> list[tuple[str, str]]:
        repo = self._repo(principal)
        try:
            repo.authorize("search-type", "Patient")
        except FhirError:
            return []
        req = params.parse("Patient", [("_sort", "family")], max_count=limit)
        result = run(repo, req, ["Patient"], count=limit)
        return [
            (str(doc["_id"]), patient_label(doc["resource"]))
            for _, doc in result.matches
            if doc.get("resource")
        ]
