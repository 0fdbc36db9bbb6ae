"""Which paths the REST API serves, and which methods each path allows (405 + ``Allow``).

Two rules make "known path, unsupported method" answer 405 instead of 404/400:

1. Path parameters only match segments that can be theirs. ``{resource_type:fhirtype}`` is
   resource-type shaped (``Patient``, not ``metadata``, ``_history`` or ``.well-known``) and
   ``{rid:fhirkey}`` is anything but a reserved segment (``_history``, ``_search``, ``$op``). So
   ``DELETE /fhir/metadata`` no longer falls into conditional delete on a type called
   "metadata", and ``PUT /fhir/Patient/_history`` is not an update of id "_history". Unknown
   types (``/fhir/Foo``) and malformed ids (``/fhir/Patient/a!b``) still reach their handler,
   which answers 404 and 400 with a precise message.
2. The 405 handler computes ``Allow`` from every route whose path matches, not just the first
   one the router tried (``/fhir/Patient/x`` is served by five routes, one per method).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import compile_path
from starlette.types import Scope

# The order RFC 9110 lists them in; unknown methods go last, alphabetically.
_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class FhirTypeConvertor(Convertor[str]):
    """A resource-type shaped segment; whether the type exists is the handler's 404."""

    regex = "[A-Z][A-Za-z]{0,63}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class FhirKeyConvertor(Convertor[str]):
    """Any segment but a reserved one (``_history``, ``$op``); bad ids are the handler's 400."""

    regex = "[^/_$][^/]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("fhirtype", FhirTypeConvertor())
register_url_convertor("fhirkey", FhirKeyConvertor())


def _route_table(app: FastAPI) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path regex, methods) of every route, built on the first 405 (all routes exist by then)."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(
        app.state, "allow_table", None
    )
    if table is None:
        table = []
        for route in iter_route_contexts(app.router.routes):
            path, methods = route.path, route.methods
            if path and methods:
                table.append((compile_path(path)[0], frozenset(methods)))
        app.state.allow_table = table
    return table


def _sorted(methods: Iterable[str]) -> list[str]:
    return sorted(set(methods), key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m))


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves on this request's path (empty: an unknown path)."""
    root = scope.get("root_path", "")
    path: str = scope["path"]
    if root and path.startswith(root):
        path = path[len(root) :]
    found: set[str] = set()
    for regex, methods in _route_table(app):
        if regex.match(path):
            found |= methods
    return _sorted(found)
