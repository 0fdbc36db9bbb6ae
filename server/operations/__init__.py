"""The ``$operation`` registry: one module per operation, its OperationDefinition as data.

Why the definition drives everything: the levels (system/type/instance), the resource types,
whether GET is allowed (``affectsState``) and the accepted input parameters are read from the
JSON beside the module (``definitions/<name>.json``), so the router, the Parameters validator and
the CapabilityStatement cannot disagree with what the server publishes. Handlers are thin: they
get an ``Invocation`` (validated parameters, the caller's repository) and return a resource.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.config import Settings
    from server.operations.parameters import Params
    from server.repository import Repository

DEFINITIONS = Path(__file__).resolve().parent / "definitions"
LEVELS = ("system", "type", "instance")


@dataclass
class Invocation:
    """One call of an operation, as its handler sees it."""

    name: str
    level: str  # system | type | instance
    resource_type: str | None
    rid: str | None
    params: Params
    repo: Repository
    base: str
    settings: Settings


Handler = Callable[[Invocation], dict[str, Any]]


def load_definition(filename: str) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads((DEFINITIONS / filename).read_text(encoding="utf-8"))
    return definition


@dataclass(frozen=True)
class Operation:
    definition: dict[str, Any]
    handler: Handler

    @property
    def name(self) -> str:
        return str(self.definition["code"])

    @property
    def url(self) -> str:
        return str(self.definition["url"])

    @property
    def affects_state(self) -> bool:
        return bool(self.definition.get("affectsState", True))

    @property
    def resource_types(self) -> tuple[str, ...]:
        return tuple(self.definition.get("resource", ()))

    def at(self, level: str) -> bool:
        return bool(self.definition.get(level, False))

    def levels(self) -> list[str]:
        return [lvl for lvl in LEVELS if self.at(lvl)]

    def in_parameters(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.definition.get("parameter", []) if p.get("use") == "in"}

    def where(self) -> str:
        """Where the operation is served, for error messages."""
        types = self.resource_types or ("[type]",)
        paths = []
        if self.at("system"):
            paths.append(f"/${self.name}")
        for t in types:
            if self.at("type"):
                paths.append(f"/{t}/${self.name}")
            if self.at("instance"):
                paths.append(f"/{t}/[id]/${self.name}")
        return ", ".join(paths)


@cache
def registry() -> dict[str, Operation]:
    """``{code: Operation}``, from every module of this package that defines ``Operation`` values.

    Why discovered, not listed: each operation is one module plus one JSON definition, so adding
    one touches nothing shared. Imported lazily so handler modules may import server packages.
    """
    found: dict[str, Operation] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Operation):
                found.setdefault(value.name, value)
    return dict(sorted(found.items()))


def lookup(name: str) -> Operation | None:
    return registry().get(name)
