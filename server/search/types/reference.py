"""reference: ``[Type/]id``, absolute URLs, ``:[type]``, ``:identifier``.

``:missing`` is translated for every type at once, in ``query.clause_filter``.

Stored as ``Type/id`` (version stripped) under ``<code>`` — absolute URLs and canonicals as
written, plus canonicals without ``|version`` — and the logical identifier tokens under
``<code>@id``. Chains and ``_has`` are resolved by the executor into ``$in`` lists of
``Type/id`` (see ``server.search.query``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from resources.registry import is_resource_type, resource_types
from server.search.text import unescape
from server.search.types import Filter, QueryError, any_of, field, strings
from server.search.types import token as token_type

MODIFIERS = ("missing", "identifier")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def normalize_ref(ref: str) -> str:
    ref = ref.split("/_history/", 1)[0]
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 2 and is_resource_type(parts[-2]) and not ref.startswith(("http:", "https:")):
        return f"{parts[-2]}/{parts[-1]}"
    return ref


def extract(code: str, nodes: Sequence[Any]) -> dict[str, list[Any]]:
    refs: list[str] = []
    ids: list[str] = []
    for node in nodes:
        if isinstance(node, dict):
            r = node.get("reference")
            if isinstance(r, str) and r and not r.startswith("#"):
                refs.append(normalize_ref(r))
            ident = node.get("identifier")
            if isinstance(ident, dict):
                ids += token_type.encode(ident)[0]
        else:
            for s in strings(node):  # canonical
                refs.append(s)
                if "|" in s:
                    refs.append(s.split("|", 1)[0])
    out: dict[str, list[Any]] = {}
    if refs:
        out[code] = list(dict.fromkeys(refs))
    if ids:
        out[code + "@id"] = list(dict.fromkeys(ids))
    return out


def keys_for(value: str, type_modifier: str | None, targets: Sequence[str]) -> list[str]:
    """Stored keys a reference query value may match."""
    if value.startswith(("http://", "https://", "urn:")):
        parts = value.split("/_history/", 1)[0].rstrip("/").split("/")
        keys = [value]
        if len(parts) >= 2 and is_resource_type(parts[-2]):
            keys.append(f"{parts[-2]}/{parts[-1]}")
        return keys
    if "/" in value:
        rtype, _, rid = value.partition("/")
        rid = rid.split("/_history/", 1)[0]
        if not is_resource_type(rtype) or not _ID.match(rid):
            raise QueryError(f"{value!r} is not a reference like Type/id")
        if type_modifier and rtype != type_modifier:
            raise QueryError(f"{value!r} contradicts the :{type_modifier} modifier")
        return [f"{rtype}/{rid}"]
    if not _ID.match(value):
        raise QueryError(f"{value!r} is not a resource id")
    if type_modifier:
        return [f"{type_modifier}/{value}"]
    types = [t for t in targets if is_resource_type(t)] or list(resource_types())
    return [f"{t}/{value}" for t in types]


def build(
    code: str, modifier: str | None, values: Sequence[str], targets: Sequence[str] = ()
) -> Filter:
    if modifier == "identifier":
        return any_of([{field(code, "@id"): token_type.key_of(v)} for v in values])
    type_modifier = None
    if modifier is not None:
        if not is_resource_type(modifier):
            raise QueryError(f"modifier :{modifier} is not supported on reference parameters")
        if targets and modifier not in targets and "Resource" not in targets:
            raise QueryError(f":{modifier} is not a target type of this parameter")
        type_modifier = modifier
    keys: list[str] = []
    for raw in values:
        value = unescape(raw)
        if not value:
            raise QueryError("empty reference")
        keys += keys_for(value, type_modifier, targets)
    keys = list(dict.fromkeys(keys))
    return {field(code): keys[0] if len(keys) == 1 else {"$in": keys}}
