"""``[type]/$validate`` and ``[type]/[id]/$validate`` (HL7's Resource-validate): would this write
be accepted? Answered with an OperationOutcome and 200 either way, nothing stored.

Which checks, and why these: the ones a write runs *before* storing, so the answer is the
write's own answer.

1. The R4 structure (the R4B model, as ``Repository.create/update`` validate it).
2. Profiles: every claimed profile of the guide, the implied ``second-opinion-request``, and
   the ``profile`` parameter — with their warnings too (a write logs those), on the resource
   as the hooks leave it (the case guards fill e.g. a report's performer before the profile
   check, as in a write).
3. With ``mode=create|update``: every PRE_WRITE hook, on a copy, through the caller's
   repository and outside any transaction. The PRE_WRITE contract (server/hooks.py) is that
   hooks read the store through ``event.repository`` and report what is to be stored in the
   event's fields, never write: so they can run without writing. That covers the access policy
   (first, so nothing after it reveals data to a party that may not write), the case engine's
   guards, the profile check, the domain rules of ``resources/`` and referential integrity.
   A write stops at the first refusing hook; so does this (its issues are that hook's).
   PRE_COMMIT hooks are *not* run: they are the write's consequences (opening the case,
   eligibility, matching), which write, and no precondition of the write.
4. ``mode=delete``: the instance exists (for the caller: the read policy applies, so an
   invisible one is "not known" like a 404) and the delete hooks pass: access, the workflow
   guards (a filed report is kept) and integrity (no live resource references it).

Without ``mode`` only 1 and 2 run: there is no write to rehearse. Malformed requests are 4xx,
not issues: no resource, an unknown mode, an unknown profile or one for another type
(400, as for any bad operation parameter); the type and id of the resource against the URL
are issues of the resource (a PUT would refuse them), so they are reported with 200.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from profiles.conformance import is_known_profile, profile_type, strip_version
from profiles.validator import validate as validate_profile
from resources.validation import ResourceInvalid, validate_resource
from server.errors import FhirError, Issue, operation_outcome
from server.hooks import HookPoint, WriteEvent
from server.operations import Invocation, Operation, load_definition
from server.profile_validation import profiles_to_check
from server.repository import invalid
from server.storage import same_content

MODES = ("create", "update", "delete")


def _bad(name: str, text: str, code: str = "invalid") -> FhirError:
    return FhirError(400, code, text, expression=[f"Parameters.parameter('{name}')"])


def _request(call: Invocation) -> tuple[str | None, str | None]:
    """(mode, profile), refusing what makes the request itself malformed."""
    mode = call.params.first("mode")
    if mode is not None and mode not in MODES:
        raise _bad("mode", f"mode must be one of {', '.join(MODES)}, got {str(mode)[:40]!r}")
    profile = call.params.first("profile")
    if profile is not None:
        if not is_known_profile(profile):
            raise _bad("profile", f"unknown profile {str(profile)[:200]}", "not-supported")
        if profile_type(profile) != call.resource_type:
            raise _bad(
                "profile",
                f"profile {profile} constrains {profile_type(profile)}, not {call.resource_type}",
            )
        profile = strip_version(profile)
    if mode == "create" and call.level == "instance":
        raise _bad("mode", "mode=create validates a new resource: use [type]/$validate")
    if mode == "delete" and call.level != "instance":
        raise _bad("mode", "mode=delete validates the instance in the URL: [type]/[id]/$validate")
    if mode != "delete" and call.params.first("resource") is None:
        raise _bad("resource", "give the resource to validate", "required")
    return mode, profile


def _outcome(issues: list[Issue], what: str) -> dict[str, Any]:
    if not issues:
        issues = [Issue("informational", f"no issues: {what}", severity="information")]
    return operation_outcome(issues)


def _refusal(exc: FhirError) -> list[Issue]:
    """A hook's refusal as issues (severity error), keeping its codes and expressions."""
    return [Issue(i.code, i.diagnostics, "error", i.expression) for i in exc.issues]


def _dry_run(
    call: Invocation, interaction: str, rid: str, resource: dict[str, Any] | None
) -> list[Issue]:
    """Every PRE_WRITE hook on ``resource`` as a write of ``interaction`` would run them."""
    assert call.resource_type is not None
    repo = call.repo
    current = repo.current(call.resource_type, rid) if interaction != "create" else None
    event = WriteEvent(
        interaction,
        call.resource_type,
        rid,
        resource,
        current.resource if current else None,
        repo,
        None,
        previous_acl=(current.acl or {}) if current is not None else None,
    )
    try:
        repo.hooks.run(HookPoint.PRE_WRITE, event)
    except FhirError as exc:
        return _refusal(exc)
    return []


def _profile_issues(resource: dict[str, Any], extra: str | None) -> list[Issue]:
    urls = profiles_to_check(resource)
    if extra is not None and extra not in urls:
        urls.append(extra)
    out = []
    for url in urls:
        for i in validate_profile(resource, url):
            out.append(Issue(i.code, f"{i.diagnostics} [{url}]", i.severity, [i.expression]))
    return out


def _delete(call: Invocation) -> dict[str, Any]:
    assert call.resource_type is not None and call.rid is not None
    issues: list[Issue] = []
    if call.params.first("resource") is not None:
        issues.append(
            Issue(
                "informational",
                "mode=delete checks the stored instance; the resource given was not used",
                severity="information",
            )
        )
    key = f"{call.resource_type}/{call.rid}"
    try:
        call.repo.read(call.resource_type, call.rid)
    except FhirError as exc:
        if exc.status == 404:
            return _outcome([*issues, Issue("not-found", f"{key} is not known")], "")
        if exc.status == 410:
            note = f"{key} is already deleted: a delete would change nothing"
            return _outcome([*issues, Issue("informational", note, "information")], "")
        raise
    issues.extend(_dry_run(call, "delete", call.rid, None))
    return _outcome(issues, f"{key} may be deleted")


def _identity(
    call: Invocation, mode: str | None, resource: dict[str, Any]
) -> tuple[str | None, list[Issue]]:
    """The id a write would use, and what is wrong with type or id against the URL."""
    rtype = call.resource_type
    if resource.get("resourceType") != rtype:
        return None, [
            Issue(
                "invalid",
                f"the resource is a {resource.get('resourceType')!r}, not a {rtype}",
                expression=["resourceType"],
            )
        ]
    body_id = resource.get("id")
    if call.level == "instance" and body_id != call.rid:
        return None, [
            Issue(
                "invalid",
                f"the resource's id ({body_id!r}) must equal the id in the URL ({call.rid!r})",
                expression=[f"{rtype}.id"],
            )
        ]
    if mode == "update" and not isinstance(body_id, str):
        return None, [
            Issue("required", "an update needs the resource's id", expression=[f"{rtype}.id"])
        ]
    if mode == "create":
        return str(uuid.uuid4()), []  # the server assigns a new id; any id given is ignored
    return (str(body_id) if isinstance(body_id, str) else None), []


def validate_operation(call: Invocation) -> dict[str, Any]:
    assert call.resource_type is not None
    mode, profile = _request(call)
    if mode == "delete":
        return _delete(call)
    given = call.params.first("resource")
    rid, issues = _identity(call, mode, given)
    if issues:
        return _outcome(issues, "")
    try:
        validate_resource(given, call.resource_type)
    except ResourceInvalid as exc:
        return _outcome(invalid(exc).issues, "")
    candidate = copy.deepcopy(given)
    if mode is not None:
        assert rid is not None
        candidate["id"] = rid
        current = call.repo.current(call.resource_type, rid) if mode == "update" else None
        if (
            current is not None
            and not current.deleted
            and same_content(current.resource, candidate)
        ):
            note = f"identical to the current version of {call.resource_type}/{rid}: an update would change nothing"
            issues.append(Issue("informational", note, "information"))
        else:
            issues.extend(_dry_run(call, mode, rid, candidate))
    issues = _dedupe_refusal([*issues, *_profile_issues(candidate, profile)])
    return _outcome(issues, f"the {mode} would be accepted" if mode else "the resource is valid")


def _dedupe_refusal(issues: list[Issue]) -> list[Issue]:
    """The profile hook reports its errors as ``processing``; the validator's own issue for the
    same finding (precise code, same text) replaces it."""
    precise = {(i.diagnostics, tuple(i.expression)) for i in issues if i.code != "processing"}
    return [
        i
        for i in issues
        if not (i.code == "processing" and (i.diagnostics, tuple(i.expression)) in precise)
    ]


OPERATION = Operation(load_definition("validate.json"), validate_operation)
