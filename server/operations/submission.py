"""The input of ``CoverageEligibilityRequest/$submit``: the request alone or a collection Bundle,
parsed into what it names (``Submission``) before anything is looked up.

Pure apart from the R4 validator: references are resolved between the Bundle's entries
(``fullUrl``s) and to local ``Type/id`` keys; nothing is read from the store here, so every
malformed body is refused (400) or named as unresolvable (422) before any database work. The
Bundle's resources are kept only as *hints* (the Patient's birth date, the Coverage's member
numbers): ``submit_eligibility`` decides on the stored insurer-held Coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from resources.validation import ResourceInvalid, validate_resource
from server.errors import FhirError, Issue
from server.operations.links import local_key

Doc = dict[str, Any]
REQ = "CoverageEligibilityRequest"
SUBMITTABLE = (REQ, "Bundle")


def _bad(text: str, expression: str = "", status: int = 400, code: str = "invalid") -> FhirError:
    return FhirError(status, code, text, expression=[expression] if expression else [])


def unknown(text: str, expression: str) -> FhirError:
    return _bad(text, expression, 422, "not-found")


# ------------------------------------------------------------------------------ the input
@dataclass(frozen=True)
class Submission:
    """The request and what it names, before anything is looked up."""

    request: Doc
    patient: Doc | None = None  # the Bundle's Patient (demographics to check), if any
    patient_key: str | None = None  # ``Patient/id`` on this server
    insurer_key: str | None = None  # ``Organization/id`` on this server
    insurer_identifiers: list[Doc] = field(default_factory=list)
    coverage_key: str | None = None  # a stored Coverage the request names by id
    hint: Doc | None = None  # the Bundle's Coverage: only what identifies the member is used
    diagnoses: list[Doc] = field(default_factory=list)  # CodeableConcepts
    diagnosis_keys: list[str] = field(default_factory=list)  # ``Condition/id`` on this server


class _Bundle:
    """Resolves references between the entries of a collection Bundle."""

    def __init__(self, entries: list[tuple[str | None, Doc]], base: str) -> None:
        self.base = base
        self.by_ref: dict[str, tuple[str | None, Doc]] = {}
        for full_url, resource in entries:
            if full_url:
                self.by_ref[full_url] = (full_url, resource)
                key = local_key({"reference": full_url}, base)
                if key:
                    self.by_ref[key] = (full_url, resource)
            if isinstance(resource.get("id"), str):
                self.by_ref.setdefault(
                    f"{resource['resourceType']}/{resource['id']}", (full_url, resource)
                )

    def resolve(self, reference: Any) -> tuple[str | None, Doc | None]:
        """(local ``Type/id`` the reference or its entry's fullUrl names, the entry's resource)."""
        key = local_key(reference, self.base)
        ref = reference.get("reference") if isinstance(reference, dict) else None
        found = self.by_ref.get(ref) if isinstance(ref, str) else None
        if found is None and key:
            found = self.by_ref.get(key)
        if found is None:
            return key, None
        full_url, resource = found
        return key or local_key({"reference": full_url}, self.base), resource


def _entries(bundle: Doc) -> list[tuple[str | None, Doc]]:
    if bundle.get("type") != "collection":
        raise _bad(
            f"$submit takes a collection Bundle, not a {bundle.get('type')!r} one", "Bundle.type"
        )
    out: list[tuple[str | None, Doc]] = []
    for i, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise _bad(f"Bundle.entry[{i}] has no resource", f"Bundle.entry[{i}]")
        url = entry.get("fullUrl")
        out.append((url if isinstance(url, str) else None, resource))
    if not out or out[0][1].get("resourceType") != REQ:
        raise _bad(
            "the Bundle's first entry must be the CoverageEligibilityRequest", "Bundle.entry[0]"
        )
    return out


def _of_type(resource: Doc | None, rtype: str, expression: str) -> Doc | None:
    if resource is not None and resource.get("resourceType") != rtype:
        raise _bad(
            f"{expression} must be a {rtype}, the Bundle has a {resource.get('resourceType')}",
            expression,
            422,
            "business-rule",
        )
    return resource


def parse(body: Any, base: str) -> Submission:
    """The submitted resource → ``Submission``; 400 when malformed, 422 when it names what is
    neither in the Bundle nor on this server."""
    rtype = body.get("resourceType") if isinstance(body, dict) else None
    if rtype not in SUBMITTABLE:
        raise _bad(
            "$submit takes a CoverageEligibilityRequest, or a collection Bundle whose first "
            f"entry is one; got {str(rtype)[:64] if rtype else 'no resource'}",
            code="structure",
        )
    assert isinstance(body, dict)
    try:
        validate_resource(body, str(rtype))
    except ResourceInvalid as exc:
        issues = [Issue("invalid", d, expression=[e] if e else []) for d, e in exc.issues]
        raise FhirError(400, "invalid", str(exc), issues=issues) from exc
    entries = _entries(body) if rtype == "Bundle" else []
    bundle = _Bundle(entries, base) if entries else None
    request: Doc = entries[0][1] if entries else body
    if request.get("status") not in (None, "active"):
        raise _bad(
            f"only an active request is answered, not a {request.get('status')!r} one",
            f"{REQ}.status",
            422,
            "business-rule",
        )

    def resolve(reference: Any) -> tuple[str | None, Doc | None]:
        return bundle.resolve(reference) if bundle else (local_key(reference, base), None)

    # the patient
    patient_key, patient = resolve(request.get("patient"))
    patient = _of_type(patient, "Patient", f"{REQ}.patient")
    if patient_key is not None and not patient_key.startswith("Patient/"):
        raise _bad(
            f"{REQ}.patient must reference a Patient", f"{REQ}.patient", 422, "business-rule"
        )
    if patient_key is None and patient is None:
        where = "neither in the Bundle nor " if bundle else ""
        raise unknown(
            f"{REQ}.patient is {where}a Patient on this server (Patient/id)"
            + ("" if bundle else "; or send a collection Bundle carrying the Patient"),
            f"{REQ}.patient",
        )
    # the insurer
    insurer_ref = request.get("insurer")
    insurer_key, insurer = resolve(insurer_ref)
    insurer = _of_type(insurer, "Organization", f"{REQ}.insurer")
    if insurer_key is not None and not insurer_key.startswith("Organization/"):
        raise _bad(
            f"{REQ}.insurer must reference an Organization", f"{REQ}.insurer", 422, "business-rule"
        )
    identifiers = [i for i in (insurer or {}).get("identifier") or [] if isinstance(i, dict)]
    if isinstance(insurer_ref, dict) and isinstance(insurer_ref.get("identifier"), dict):
        identifiers.append(insurer_ref["identifier"])
    if insurer_key is None and not identifiers:
        raise unknown(
            f"{REQ}.insurer names no insurer on this server: reference Organization/id, or "
            "carry the insurer Organization (with its identifier) in the Bundle",
            f"{REQ}.insurer",
        )
    # the cover
    coverage_key: str | None = None
    hint: Doc | None = None
    insurance = sorted(
        (i for i in request.get("insurance") or [] if isinstance(i, dict)),
        key=lambda i: not i.get("focal", False),
    )
    if insurance:
        coverage_key, hint = resolve(insurance[0].get("coverage"))
        hint = _of_type(hint, "Coverage", f"{REQ}.insurance.coverage")
        if coverage_key is not None and not coverage_key.startswith("Coverage/"):
            raise _bad("insurance.coverage must reference a Coverage", f"{REQ}.insurance", 422)
        if coverage_key is None and hint is None:
            raise unknown(
                f"{REQ}.insurance.coverage is neither in the Bundle nor a Coverage on this server",
                f"{REQ}.insurance.coverage",
            )
    elif bundle is not None:
        hint = next((r for _, r in _entries(body)[1:] if r.get("resourceType") == "Coverage"), None)
    # the diagnoses
    concepts: list[Doc] = []
    condition_keys: list[str] = []
    for item in request.get("item") or []:
        for diagnosis in (item or {}).get("diagnosis") or []:
            if isinstance(diagnosis.get("diagnosisCodeableConcept"), dict):
                concepts.append(diagnosis["diagnosisCodeableConcept"])
            elif "diagnosisReference" in diagnosis:
                key, condition = resolve(diagnosis["diagnosisReference"])
                condition = _of_type(condition, "Condition", f"{REQ}.item.diagnosis")
                if condition is not None:
                    concepts.append(condition.get("code") or {})
                elif key is not None and key.startswith("Condition/"):
                    condition_keys.append(key)
                else:
                    raise unknown(
                        f"{REQ}.item.diagnosis references no Condition in the Bundle or here",
                        f"{REQ}.item.diagnosis",
                    )
    return Submission(
        request,
        patient,
        patient_key,
        insurer_key,
        identifiers,
        coverage_key if hint is None else None,
        hint,
        concepts,
        condition_keys,
    )


def service_day(request: Doc, today: date) -> date:
    text = request.get("servicedDate") or (request.get("servicedPeriod") or {}).get("start")
    try:
        return date.fromisoformat(text[:10]) if isinstance(text, str) else today
    except ValueError:
        return today
