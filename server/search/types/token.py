"""token: codes, Codings, CodeableConcepts, Identifiers, ContactPoints, booleans.

Stored as ``system|code`` and ``code`` (and ``|code`` when there is no system), so each FHIR
token form is one equality on one multikey field; ``sys|`` is a prefix range. ``:text`` searches
the normalized display/text words kept under ``<code>@text``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.search.text import normalize, prefix_range, split_unescaped, unescape
from server.search.types import Filter, QueryError, any_of, field, strings

MODIFIERS = ("missing", "not", "text", "exact")


def _codes(system: Any, code: Any) -> list[str]:
    c = strings(code)
    if not c:
        return []
    s = strings(system)
    return [f"{s[0]}|{c[0]}", c[0]] if s else [f"|{c[0]}", c[0]]


def _texts(*values: Any) -> list[str]:
    out: list[str] = []
    for v in values:
        for s in strings(v):
            n = normalize(s)
            if n:
                out.append(n)
                out.extend(w for w in n.split(" ")[1:] if w)
    return out


def encode(node: Any) -> tuple[list[str], list[str]]:
    """(token keys, text keys) of one node."""
    if not isinstance(node, dict):
        return _codes(None, node), []
    if "coding" in node or ("text" in node and "value" not in node):
        keys: list[str] = []
        texts = _texts(node.get("text"))
        for coding in node.get("coding") or []:
            if isinstance(coding, dict):
                keys += _codes(coding.get("system"), coding.get("code"))
                texts += _texts(coding.get("display"))
        return keys, texts
    if "code" in node or "display" in node:  # Coding
        return _codes(node.get("system"), node.get("code")), _texts(node.get("display"))
    if "value" in node:  # Identifier or ContactPoint
        texts = _texts((node.get("type") or {}).get("text")) if "type" in node else []
        keys = _codes(node.get("system"), node.get("value"))
        return keys, texts
    return [], []


def extract(code: str, nodes: Sequence[Any]) -> dict[str, list[Any]]:
    keys: list[str] = []
    texts: list[str] = []
    for node in nodes:
        k, t = encode(node)
        keys += k
        texts += t
    out: dict[str, list[Any]] = {}
    if keys:
        out[code] = list(dict.fromkeys(keys))
    if texts:
        out[code + "@text"] = list(dict.fromkeys(texts))
    return out


def key_of(value: str) -> str | dict[str, str]:
    """The stored key (or prefix range for ``system|``) a token query value must match."""
    parts = split_unescaped(value, "|")
    if len(parts) == 1:
        code = unescape(parts[0])
        if not code:
            raise QueryError("empty token")
        return code
    if len(parts) != 2:
        raise QueryError(f"token {value!r} has more than one unescaped '|'")
    system, code = unescape(parts[0]), unescape(parts[1])
    if not code:
        if not system:
            raise QueryError("empty token")
        return prefix_range(system + "|")
    return f"{system}|{code}"


def build(code: str, modifier: str | None, values: Sequence[str]) -> Filter:
    name = field(code)
    if modifier == "text":
        return any_of(
            [{field(code, "@text"): prefix_range(normalize(unescape(v)))} for v in values]
        )
    if modifier not in (None, "not", "exact"):
        raise QueryError(f"modifier :{modifier} is not supported on token parameters")
    frags = [{name: key_of(v)} for v in values]
    if modifier == "not":
        keys = [f[name] for f in frags]
        if any(isinstance(k, dict) for k in keys):
            return {"$nor": frags}
        return {name: {"$nin": keys}}
    return any_of(frags)
