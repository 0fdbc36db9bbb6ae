"""Named hook points with documented contracts (HAPI's Pointcut is the model).

Cross-cutting behaviour (profile validation, authorization, audit, second-opinion workflow)
attaches here instead of being special-cased in REST handlers or the repository.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo.client_session import ClientSession

    from server.repository import Repository

log = logging.getLogger(__name__)


class HookPoint(Enum):
    PRE_WRITE = "pre_write"
    """Called with a ``WriteEvent`` inside the write's transaction, after structural validation
    and before storage, in registration order (the access hook first and again last).

    A hook rejects the write by raising ``FhirError``; the whole transaction then rolls back.
    A hook may change ``event.resource`` (replace it or edit it in place): the repository
    detects the change by comparing the serialized resource before and after the hooks, and
    validates the changed resource again (400 if invalid, nothing stored). Authorization and the
    stored ``acl`` see the final resource because the access hook also runs last. Hooks read
    the store only through ``event.repository`` (``find_visible``, ``read``; ``pending`` for a
    transaction Bundle's inserts not flushed yet) and report what is to be stored beside the
    resource in the typed fields ``acl`` and ``refs``."""

    PRE_COMMIT = "pre_commit"
    """Called with each ``WriteEvent`` of a request (or transaction Bundle) after all its writes
    and before the commit, inside the same transaction, in write order, including the events of
    writes that earlier PRE_COMMIT hooks made (bounded: see ``Repository.MAX_FOLLOW_UPS``).

    For consequences that must commit with the write or not at all (the case engine opens a
    case, decides eligibility, completes a case on a final report). Why after all writes and
    not in PRE_WRITE: a transaction Bundle may list the request before the Condition and the
    Coverage it references, so the consequences can only be decided once every entry is in.
    Raising ``FhirError`` rolls back the whole transaction. Hooks write through
    ``event.repository`` (the caller's security) or ``event.repository.unrestricted()`` (the
    server's own account); both join the transaction."""

    POST_COMMIT = "post_commit"
    """Called with a ``WriteEvent`` after the transaction committed. Must not raise: errors are
    logged and swallowed, because the client's write has already succeeded."""


@dataclass
class WriteEvent:
    interaction: str  # create | update | patch | delete
    resource_type: str
    resource_id: str
    resource: dict[str, Any] | None  # None for delete
    previous: dict[str, Any] | None
    repository: Repository
    session: ClientSession | None = None
    version_id: int | None = None
    # The stored ``acl`` of the id being written, even of a deleted version (so a deleted id of
    # another party cannot be taken over); None when the id has never been stored.
    previous_acl: dict[str, Any] | None = None
    # Set by the access hook: the ownership facts stored with this version (server/access.py);
    # None keeps the previous version's.
    acl: dict[str, Any] | None = None
    # Set by the integrity hook: the local reference targets stored as ``refs``.
    refs: list[str] | None = None


Hook = Callable[[WriteEvent], None]
# Takes what the server derived away from a stored resource (a report's generated PDF); returns
# a copy (or the resource itself when there is nothing to take away); never mutates it.
Underive = Callable[[dict[str, Any]], dict[str, Any]]


class Hooks:
    def __init__(self) -> None:
        self._hooks: dict[HookPoint, list[Hook]] = defaultdict(list)
        self._derived: dict[str, list[Underive]] = defaultdict(list)

    def register(self, point: HookPoint, hook: Hook, *, first: bool = False) -> None:
        """``first``: run before the hooks already registered (authorization runs first)."""
        if first:
            self._hooks[point].insert(0, hook)
        else:
            self._hooks[point].append(hook)

    def register_derived(self, resource_type: str, underive: Underive) -> None:
        """A PRE_WRITE hook that adds content derived from the rest of a resource (the report's
        PDF, server/reports/hook.py) says how to take it away again.

        Why: an update whose body equals the stored version *without* the derived content is the
        client sending what it sent before, so it is an identical update (no new version, no
        hooks), and not a change the hooks would refuse (a final report written as final again).
        """
        self._derived[resource_type].append(underive)

    def without_derived(self, resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
        """``resource`` without what the registered hooks derived (``register_derived``)."""
        for underive in self._derived.get(resource_type, ()):
            resource = underive(resource)
        return resource

    def run(self, point: HookPoint, event: WriteEvent) -> None:
        for hook in self._hooks[point]:
            if point is HookPoint.POST_COMMIT:
                try:
                    hook(event)
                except Exception:
                    log.exception("post-commit hook %r failed", hook)
            else:
                hook(event)
