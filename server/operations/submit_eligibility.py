"""``POST CoverageEligibilityRequest/$submit``: eligibility the way insurers ask it (IHE FAIS,
Da Vinci): "is this member covered for a second opinion, and how much of it is left?"

The body is a CoverageEligibilityRequest alone (its ``patient``, ``insurer`` and
``insurance.coverage`` reference resources on this server), or a ``collection`` Bundle whose
first entry is the request and which carries the Patient, the insurer Organization and the
Coverage as the requester knows them (front-desk data: the number on the member card).

*Who the member is* is decided on the server's insurer-held Coverage (``acl.attested``), never
on a Coverage sent in the Bundle: that one is only a *hint* whose certificate identifiers,
``subscriberId``, class values (group, plan) and ``dependent`` select the stored Coverage of the
named insurer, and the Bundle Patient's date of birth must agree with the stored member's.
Anyone can type a certificate number; only the insurer's roster says it is a member. A member
not found is an answer (``error`` member-not-found), not an HTTP error: the requester learns no
more than "no", whatever the reason (unknown number, another insurer's member, wrong birth date).

*What is decided*: the cover rules of ``resources.eligibility.evaluate`` (member-not-found,
coverage-unverified, coverage-not-in-force, benefit-not-included, benefit-exhausted), and
condition-not-covered when the request codes a diagnosis (``item.diagnosis``). The clinical
criteria of a case (investigations complete, firm diagnosis) belong to a ServiceRequest and are
decided on it (``$eligibility``, and by the case engine at submission), so an eligible answer
here says "covered", not "this case will be accepted". Utilisation is the same count as
``$eligibility`` (``coverage_check.opinions_used``), read on the server's own account.

*Stored, like $eligibility* — why: the answer is a business record the insurer tracks
(eligibility and utilisation, DOMAIN.md) and R4 requires ``CoverageEligibilityResponse.request``.
What is stored is the question *as the server understood it* (the matched stored Patient and
Coverage, the insurer, the coded diagnoses, the requester's identifier), not the Bundle: its
Patient and Coverage are a requester's claims and would otherwise become records of their own.

*Who may ask*: a clinic about its own patients (the Patient is named by its id here), an insurer
about its own members (the request's insurer must be the caller's organization), a coordinator
and a trusted integration about anyone; a specialist never (403: experts see no cover).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from resources.coverage import benefits_of, class_value, in_force
from resources.domain import codings
from resources.eligibility import (
    BENEFIT_EXHAUSTED,
    BENEFIT_NOT_INCLUDED,
    CONDITION_NOT_COVERED,
    COVERAGE_NOT_IN_FORCE,
    COVERAGE_UNVERIFIED,
    MEMBER_NOT_FOUND,
    Eligibility,
    EligibilityFacts,
    Failure,
    evaluate,
)
from server.cases import coverage_check
from server.cases.coverage_check import BENEFIT_CATEGORY, CONSULTATION, PROVIDER_TYPES, Checked
from server.errors import FhirError
from server.operations import Invocation, Operation, load_definition
from server.operations.links import local_key
from server.operations.submission import REQ, Submission, parse, service_day, unknown
from server.repository import Repository
from server.timeutil import fhir_instant, now

Doc = dict[str, Any]
COVER_RULES = frozenset(
    {
        MEMBER_NOT_FOUND,
        COVERAGE_UNVERIFIED,
        COVERAGE_NOT_IN_FORCE,
        BENEFIT_NOT_INCLUDED,
        BENEFIT_EXHAUSTED,
    }
)
MAX_CANDIDATES = 50


# ------------------------------------------------------------------------ who may ask what
def _caller(repo: Repository) -> tuple[str | None, str | None]:
    """(party, organization): the role, or ``"patient"`` for a patient-context token (a
    patient's app asks about that patient only), or None for the unrestricted (a trusted
    integration, an administrator, authorization off)."""
    p = repo.principal
    if p is None or p.admin:
        return None, None
    if p.role == "specialist":
        raise FhirError(403, "forbidden", "specialists do not check a member's cover")
    repo.authorize("read", "Coverage")
    repo.authorize("read", "CoverageEligibilityResponse")
    if p.role is None and (p.patient or any(q.context == "patient" for q in p.permissions)):
        return "patient", None
    return p.role, p.organization


def _insurer(system: Repository, sub: Submission) -> str:
    if sub.insurer_key is not None:
        if _current(system, sub.insurer_key) is None:
            raise unknown(f"{REQ}.insurer: {sub.insurer_key} is not known", f"{REQ}.insurer")
        return sub.insurer_key
    for ident in sub.insurer_identifiers:
        value, sid = ident.get("value"), ident.get("system")
        if not isinstance(value, str):
            continue
        token = f"{sid}|{value}" if isinstance(sid, str) else value
        found = list(
            system.find_visible("Organization", {"idx.identifier": token}, fields=["_id"], limit=2)
        )
        if len(found) == 1:
            return f"Organization/{found[0]['_id']}"
    raise unknown(
        f"{REQ}.insurer: the Bundle's Organization matches no insurer on this server by identifier",
        f"{REQ}.insurer",
    )


def _check_patient(repo: Repository, role: str | None, sub: Submission) -> None:
    key = sub.patient_key
    if key is None:
        if role in ("clinic", "patient"):
            raise unknown(
                "a clinic (or a patient's app) asks about its own patients: name the Patient "
                "by its id on this "
                "server (the Bundle's Patient fullUrl or CoverageEligibilityRequest.patient)",
                f"{REQ}.patient",
            )
        return
    if role == "insurer":
        mine = repo.find_visible("Coverage", {"idx.beneficiary": key}, fields=["_id"], limit=1)
        if next(mine, None) is None:
            raise FhirError(403, "forbidden", f"{key} is not one of your members")
        return
    try:
        repo.read("Patient", key.split("/", 1)[1])
    except FhirError as exc:
        if exc.status in (404, 410):
            raise unknown(f"{REQ}.patient: {key} is not known", f"{REQ}.patient") from exc
        raise


def _diagnoses(repo: Repository, sub: Submission) -> list[Doc]:
    """Coded diagnoses; a Condition on this server is read with the caller's rights."""
    out = list(sub.diagnoses)
    for key in sub.diagnosis_keys:
        try:
            condition = repo.read("Condition", key.split("/", 1)[1]).resource or {}
        except FhirError as exc:
            if exc.status in (404, 410):
                raise unknown(f"{REQ}.item.diagnosis: {key} is not known", "") from exc
            raise
        out.append(condition.get("code") or {})
    return out


# ----------------------------------------------------------------------- the member lookup
def _current(repo: Repository, key: str) -> Doc | None:
    rtype, rid = key.split("/", 1)
    return next(repo.find_visible(rtype, {"_id": rid}, limit=1), None)


def _candidates(
    system: Repository, sub: Submission, insurer: str, patient: str | None
) -> list[Doc]:
    by_payor = {"idx.payor": insurer}
    queries: list[Doc] = []
    if sub.coverage_key is not None:
        queries.append({"_id": sub.coverage_key.split("/", 1)[1]})
    elif sub.hint is not None:
        tokens = []
        for ident in sub.hint.get("identifier") or []:
            value, sid = ident.get("value"), ident.get("system")
            if isinstance(value, str):
                tokens.append(f"{sid}|{value}" if isinstance(sid, str) else value)
        if tokens:
            queries.append({**by_payor, "idx.identifier": {"$in": tokens}})
        if isinstance(sub.hint.get("subscriberId"), str):
            queries.append({**by_payor, "idx.subscriber-id": sub.hint["subscriberId"]})
    if not queries and patient is not None:
        queries.append({**by_payor, "idx.beneficiary": patient})
    found: dict[str, Doc] = {}
    for query in queries:
        for doc in system.find_visible("Coverage", query, limit=MAX_CANDIDATES):
            found.setdefault(str(doc["_id"]), doc)
    return [found[k] for k in sorted(found)]


def _fits(system: Repository, doc: Doc, sub: Submission, insurer: str, patient: str | None) -> bool:
    coverage = doc["resource"]
    payors = {local_key(p) for p in coverage.get("payor") or []}
    if insurer not in payors:
        return False
    beneficiary = local_key(coverage.get("beneficiary"))
    if patient is not None and beneficiary != patient:
        return False
    if sub.coverage_key is None and not (doc.get("acl") or {}).get("attested", True):
        return False  # a looked-up member is on the insurer's roster, not a clinic's claim
    hint = sub.hint or {}
    for cls in hint.get("class") or []:
        for c in codings(cls.get("type")):
            if isinstance(c.get("code"), str) and class_value(coverage, c["code"]) != cls.get(
                "value"
            ):
                return False
    if hint.get("dependent") and hint.get("dependent") != coverage.get("dependent"):
        return False
    born = (sub.patient or {}).get("birthDate")
    if isinstance(born, str) and beneficiary:
        member = _current(system, beneficiary)
        stored = ((member or {}).get("resource") or {}).get("birthDate")
        if isinstance(stored, str) and stored != born:
            return False
    return True


def find_member(
    system: Repository, sub: Submission, insurer: str, patient: str | None, day: date
) -> tuple[Doc | None, str]:
    """The stored Coverage of the member, or None and why (for member-not-found)."""
    if sub.coverage_key is None and sub.hint is None and patient is None:
        return None, "the request names neither a Coverage nor a Patient on this server"
    fitting = [
        d
        for d in _candidates(system, sub, insurer, patient)
        if _fits(system, d, sub, insurer, patient)
    ]
    if not fitting:
        return None, "no cover of this insurer matches the member's details"
    members = {local_key(d["resource"].get("beneficiary")) for d in fitting}
    if len(members) > 1:
        return None, "the details match more than one member; give the dependent number"
    live = [d for d in fitting if in_force(d["resource"], day)] or fitting
    live.sort(key=lambda d: (str((d["resource"].get("period") or {}).get("start") or ""), d["_id"]))
    return live[-1], ""


# ------------------------------------------------------------------------------ decision
def decide(
    system: Repository, sub: Submission, insurer: str, diagnoses: list[Doc], day: date
) -> tuple[Checked, str | None]:
    """(the decision, the member's Patient key) on the server's own account."""
    doc, why = find_member(system, sub, insurer, sub.patient_key, day)
    coverage = doc["resource"] if doc else None
    coverage_key = f"Coverage/{doc['_id']}" if doc else None
    patient = sub.patient_key or (local_key(coverage.get("beneficiary")) if coverage else None)
    request: Doc = {
        "resourceType": "ServiceRequest",
        "subject": {"reference": patient} if patient else {"display": "unknown"},
        "reasonCode": diagnoses,
    }
    benefits = None
    plan = coverage_check.find_plan(system, coverage)
    if coverage is not None and coverage_key is not None:
        used = coverage_check.opinions_used(system, request, coverage_key, day, coverage)
        benefits = benefits_of(plan, coverage, used=used)
    facts = EligibilityFacts(
        request=request,
        coverage=coverage,
        coverage_attested=bool(((doc or {}).get("acl") or {}).get("attested", True)),
        condition=None,
        supporting=[],
        benefits=benefits,
        day=day,
    )
    result = evaluate(facts)
    applicable = COVER_RULES | ({CONDITION_NOT_COVERED} if diagnoses else set())
    failures = tuple(_explain(f, why) for f in result.failures if f.code in applicable)
    decided = Eligibility(not failures, failures, result.condition)
    return Checked(decided, facts, coverage_key, None, plan), patient


def _explain(failure: Failure, why: str) -> Failure:
    if failure.code != MEMBER_NOT_FOUND:
        return failure
    return replace(
        failure,
        explanation=f"We could not find the member: {why or 'no matching cover'}. Check the "
        "certificate number and group policy number on the member's card with the insurer.",
        expression=f"{REQ}.insurance",
    )


# -------------------------------------------------------------------------------- records
def build_question(
    sub: Submission, checked: Checked, patient: str | None, insurer: str, created: str
) -> Doc:
    submitted = sub.request
    item: Doc = {"category": BENEFIT_CATEGORY, "productOrService": CONSULTATION}
    diagnoses = [c for c in checked.facts.request.get("reasonCode") or [] if c]
    if diagnoses:
        item["diagnosis"] = [{"diagnosisCodeableConcept": c} for c in diagnoses]
    out: Doc = {
        "resourceType": REQ,
        "status": "active",
        "purpose": list(submitted.get("purpose") or coverage_check.PURPOSE),
        "patient": {"reference": patient} if patient else _logical_patient(sub),
        "servicedDate": checked.facts.day.isoformat(),
        "created": created,
        "insurer": {"reference": insurer},
        "item": [item],
    }
    if submitted.get("identifier"):
        out["identifier"] = submitted["identifier"]
    provider = local_key(submitted.get("provider"))
    if provider and provider.split("/")[0] in PROVIDER_TYPES:
        out["provider"] = {"reference": provider}
    if checked.coverage_key:
        out["insurance"] = [{"focal": True, "coverage": {"reference": checked.coverage_key}}]
    return out


def _logical_patient(sub: Submission) -> Doc:
    """The member as the requester described them, when no stored Patient is theirs."""
    patient = sub.patient or {}
    out: Doc = {"display": "member not identified"}
    ident = next((i for i in patient.get("identifier") or [] if isinstance(i, dict)), None)
    if ident is not None:
        out["identifier"] = {k: ident[k] for k in ("system", "value") if k in ident}
    return out


def build_answer(question_key: str, question: Doc, checked: Checked) -> Doc:
    answer = coverage_check.build_response(question_key, question, checked)
    answer["purpose"] = question["purpose"]
    if checked.result.eligible:
        answer["disposition"] = (
            "Covered for a second medical opinion. The clinical criteria (covered condition, "
            "completed investigations, firm diagnosis) are checked when the case is submitted."
        )
    return answer


# ------------------------------------------------------------------------------- handler
def submit(call: Invocation) -> Doc:
    repo = call.repo
    role, organization = _caller(repo)
    sub = parse(call.params.first("resource"), call.base)
    system = repo.unrestricted()
    insurer = _insurer(system, sub)
    if role == "insurer" and insurer != f"Organization/{organization}":
        raise FhirError(
            403, "forbidden", f"an insurer asks about its own members; {insurer} is not you"
        )
    _check_patient(repo, role, sub)
    diagnoses = _diagnoses(repo, sub)
    day = service_day(sub.request, datetime.now(UTC).date())

    def write(tx: Repository) -> Doc:
        own = tx.unrestricted()
        checked, patient = decide(own, sub, insurer, diagnoses, day)
        question = build_question(sub, checked, patient, insurer, fhir_instant(now()))
        stored_q = own.create(REQ, question)
        answer = build_answer(f"{REQ}/{stored_q.id}", question, checked)
        stored = own.create("CoverageEligibilityResponse", answer)
        assert stored.resource is not None
        return stored.resource

    return repo.transaction(write)


OPERATION = Operation(load_definition("submit.json"), submit)
