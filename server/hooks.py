"""Named hook points with documented contracts (HAPI's Pointcut is the model).

Cross-cutting behaviour (profile validation, authorization, audit, second-opinion workflow)
attaches here instead of being special-cased in REST handlers or the repository.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo.client_session import ClientSession

    from server.repository import Repository

log = logging.getLogger(__name__)


class HookPoint(Enum):
    PRE_WRITE = "pre_write"
    """Called with a ``WriteEvent`` inside the write's transaction, after structural validation
    and before storage. A hook may modify ``event.resource`` (it is re-checked afterwards) and
    rejects the write by raising ``FhirError``; the whole transaction then rolls back."""

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
    extra: dict[str, Any] = field(default_factory=dict)


Hook = Callable[[WriteEvent], None]


class Hooks:
    def __init__(self) -> None:
        self._hooks: dict[HookPoint, list[Hook]] = defaultdict(list)

    def register(self, point: HookPoint, hook: Hook, *, first: bool = False) -> None:
        """``first``: run before the hooks already registered (authorization runs first)."""
        if first:
            self._hooks[point].insert(0, hook)
        else:
            self._hooks[point].append(hook)

    def run(self, point: HookPoint, event: WriteEvent) -> None:
        for hook in self._hooks[point]:
            if point is HookPoint.POST_COMMIT:
                try:
                    hook(event)
                except Exception:
                    log.exception("post-commit hook %r failed", hook)
            else:
                hook(event)
