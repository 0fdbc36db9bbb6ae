"""FastAPI adapter for auth: bearer token → principal on ``request.state``, then a coarse check.

Security by default: with auth on and no verifier installed, every protected request is refused.
``request.state.security`` holds the request's ``server.context.SecurityContext`` (its
``principal`` is an ``auth.principal.Principal``, None only when auth is off).

The coarse check classifies the URL into a FHIR interaction and type and asks the policy whether
the token's scopes allow it at all (403 OperationOutcome if not). Object-level decisions (which
patient, which organization) happen in the repository, so they also cover batch entries,
_include results and operations that call the repository.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from resources.registry import is_resource_type
from server.context import SecurityContext
from server.errors import FhirError


@dataclass(frozen=True)
class Interaction:
    name: str  # read | vread | update | patch | delete | create | search-type | ... | operation
    resource_type: str | None = None
    resource_id: str | None = None
    operation: str | None = None


def classify(method: str, fhir_path: str) -> Interaction:
    """``method`` + the path below ``/fhir`` → the FHIR RESTful interaction it is."""
    parts = [p for p in fhir_path.strip("/").split("/") if p]
    method = method.upper()
    if not parts:
        if method == "POST":
            return Interaction("batch")
        return Interaction("search-system")
    head = parts[0]
    if head.startswith("$"):
        return Interaction("operation", operation=head[1:])
    if head == "_history":
        return Interaction("history-system")
    if head in ("_search",):
        return Interaction("search-system")
    if head == "metadata":
        return Interaction("capabilities")
    if not is_resource_type(head):
        return Interaction("unknown")
    rtype = head
    if len(parts) == 1:
        name = {
            "GET": "search-type",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }.get(method, "unknown")
        return Interaction(name, rtype)
    second = parts[1]
    if second == "_search":
        return Interaction("search-type", rtype)
    if second == "_history":
        return Interaction("history-type", rtype)
    if second.startswith("$"):
        return Interaction("operation", rtype, operation=second[1:])
    rid = second
    if len(parts) == 2:
        names = {
            "GET": "read",
            "HEAD": "read",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }
        return Interaction(names.get(method, "unknown"), rtype, rid)
    third = parts[2]
    if third == "_history":
        return Interaction("vread" if len(parts) > 3 else "history-instance", rtype, rid)
    if third.startswith("$"):
        return Interaction("operation", rtype, rid, operation=third[1:])
    if is_resource_type(third) or third == "*":
        # compartment search: the type searched is the one that needs the scope
        return Interaction("search-compartment", third if third != "*" else None, rid)
    return Interaction("unknown", rtype, rid)


def _unauthorized(description: str) -> FhirError:
    safe = description.replace('"', "'")
    return FhirError(
        401,
        "login",
        description,
        headers={
            "WWW-Authenticate": f'Bearer realm="consilium", error="invalid_token", '
            f'error_description="{safe}"'
        },
    )


def authenticate(request: Request) -> None:
    """Token → ``request.state.security`` (a ``SecurityContext``), then the one coarse check.

    Sync and CPU-only (signature, claims, in-memory key set); app.py calls it from an async
    wrapper so the read hot path takes no threadpool hop. The coarse verdict is cached in the
    context, so the repository's own check of the same interaction does not evaluate it again.
    """
    state = request.app.state.consilium
    if not state.settings.auth_enabled:
        request.state.security = SecurityContext(None, state.policy)
        return
    verifier = state.token_verifier
    header = request.headers.get("authorization", "")
    if verifier is None or not header.lower().startswith("bearer "):
        raise FhirError(
            401, "login", "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    token = header[7:].strip()
    if not token:
        raise _unauthorized("empty bearer token")
    principal = verifier(token, request)
    if principal is None:
        raise _unauthorized("invalid, expired or revoked token")
    security = SecurityContext(principal, state.policy)
    request.state.security = security
    if state.policy is None:
        return
    path = request.url.path
    below = path[len("/fhir") :] if path.startswith("/fhir") else path
    action = classify(request.method, below)
    if action.resource_type is not None and action.name != "unknown":
        interaction = "search-type" if action.name == "search-compartment" else action.name
        verdict = security.decide(interaction, action.resource_type)
        # Not final: only the body can tell (a coordination Task); the write check decides.
        if not verdict and verdict.final:
            raise FhirError(
                403,
                "forbidden",
                f"{action.name} on {action.resource_type} refused by rule {verdict.rule}: "
                f"{verdict.reason}",
                headers={
                    "WWW-Authenticate": 'Bearer realm="consilium", error="insufficient_scope"'
                },
            )
