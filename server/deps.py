"""FastAPI dependencies: the app's shared state and the per-request repository."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from auth.principal import Principal
from resources.registry import is_resource_type
from resources.validation import ID_PATTERN
from server.config import Settings
from server.context import AccessPolicy, SecurityContext
from server.database import Store
from server.errors import FhirError, bad_request, precondition_failed
from server.hooks import Hooks
from server.repository import Repository

if TYPE_CHECKING:
    from server.audit import AuditWriter
    from server.read_cache import ReadCache, Watcher
    from server.search.page_cache import PageCache
    from server.smart import AuthRuntime

CapabilityContributor = Callable[[dict[str, Any]], None]
TokenVerifier = Callable[[str, Request], Principal | None]


@dataclass
class AppState:
    """What plugins share, as typed fields (no string-keyed bag): each has one writer.

    ``policy`` and ``token_verifier`` are installed by the SMART plugin (server/smart.py) when
    auth is on; ``audit_writer`` by the audit plugin; ``shutdown_hooks`` run in order at
    shutdown, before the store closes.
    """

    settings: Settings
    store: Store
    hooks: Hooks
    mongodb_uri: str = ""
    version: str = "0.0.0"
    capability_contributors: list[CapabilityContributor] = field(default_factory=list)
    shutdown_hooks: list[Callable[[], None]] = field(default_factory=list)
    policy: AccessPolicy | None = None
    token_verifier: TokenVerifier | None = None
    auth: AuthRuntime | None = None
    audit_writer: AuditWriter | None = None
    read_cache: ReadCache | None = None  # server/read_cache.py, when CONSILIUM_READ_CACHE > 0
    read_cache_watcher: Watcher | None = None  # its change-stream thread, with the read cache
    page_cache: PageCache | None = None  # server/search/page_cache.py, with the read cache


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.consilium
    return state


def get_security(request: Request) -> SecurityContext:
    """The context ``authenticate`` built for this request.

    Fails closed: a route that reaches the repository without passing ``authenticate`` gets a
    401 with auth on (with auth off there is nothing to authenticate)."""
    security: SecurityContext | None = getattr(request.state, "security", None)
    if security is not None:
        return security
    state = get_state(request)
    if state.settings.auth_enabled:
        raise FhirError(401, "login", "a bearer token is required")
    return SecurityContext(None, state.policy)


def get_repo(request: Request) -> Repository:
    state = get_state(request)
    return Repository(state.store, state.hooks, security=get_security(request))


def base_url(request: Request) -> str:
    """The FHIR base (``…/fhir``) as clients must see it in Location, fullUrl and links."""
    configured = get_state(request).settings.base_url
    root = configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
    return f"{root}/fhir"


# Dependencies are async wrappers: they never block, and a sync dependency would cost a
# threadpool hop per request (measured: ~30% of the read hot path).
async def _state_dep(request: Request) -> AppState:
    return get_state(request)


async def _repo_dep(request: Request) -> Repository:
    return get_repo(request)


async def _base_dep(request: Request) -> str:
    return base_url(request)


StateDep = Annotated[AppState, Depends(_state_dep)]
RepoDep = Annotated[Repository, Depends(_repo_dep)]
BaseDep = Annotated[str, Depends(_base_dep)]


def check_type(resource_type: str) -> str:
    if not is_resource_type(resource_type):
        raise FhirError(404, "not-supported", f"unknown resource type {resource_type!r}")
    return resource_type


def check_id(rid: str) -> str:
    if not ID_PATTERN.match(rid):
        raise bad_request(f"invalid id {rid!r}: ids match [A-Za-z0-9-.]{{1,64}}")
    return rid


# A well-formed entity-tag whose value is no version number (W/"does-not-match-999"): versions
# start at 1, so this equals no stored version.
NO_VERSION = 0
_ENTITY_TAG = re.compile(r'^(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"$')


def parse_etag(value: str | None, header: str) -> int | None:
    """``W/"3"``, ``"3"`` or ``3`` → 3; a well-formed tag that names no version → ``NO_VERSION``.

    Only a syntactically broken header (``abc``, ``W/"x``) is a client error (400): the
    entity-tag grammar (RFC 9110 8.8.3) allows any opaque value, and a value this server never
    issued simply matches nothing, which the caller turns into its own outcome.
    """
    if value is None:
        return None
    raw = value.strip()
    v = raw[2:] if raw.startswith("W/") else raw
    v = v.strip('"')
    if v.isdigit() and len(v) <= 18:
        return int(v)
    if _ENTITY_TAG.match(raw):
        return NO_VERSION
    raise bad_request(f'{header} must be an ETag like W/"3", got {value!r}')


def parse_if_match(value: str | None, header: str) -> int | None:
    """``If-Match``: a tag that names no version can never match, so the precondition fails
    (412) before any work, exactly as a version that is not the current one does."""
    version = parse_etag(value, header)
    if version == NO_VERSION:
        raise precondition_failed(f"{header} {value!r} names no version of any resource")
    return version


def prefer_return(request: Request) -> str:
    """The ``Prefer: return=`` choice: minimal | representation | OperationOutcome."""
    prefer = request.headers.get("prefer", "")
    for part in prefer.split(","):
        key, _, val = part.strip().partition("=")
        if key.strip().lower() == "return":
            v = val.strip().strip('"')
            if v in ("minimal", "representation", "OperationOutcome"):
                return v
    return "representation"


def prefer_handling(request: Request) -> str:
    prefer = request.headers.get("prefer", "")
    for part in prefer.split(","):
        key, _, val = part.strip().partition("=")
        if key.strip().lower() == "handling":
            return val.strip().strip('"').lower()
    return "lenient"
