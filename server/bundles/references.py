"""Finding and rewriting references inside resources (pure functions on plain JSON).

Used by transactions (``urn:uuid:`` → ``Type/id`` and conditional references ``Type?query``),
and by referential integrity (which local resources does this resource point at?). The walk
covers the whole resource — extensions, ``contained`` resources and backbone elements alike —
because a reference hidden in an extension is still a reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from resources.registry import is_resource_type
from resources.validation import ID_PATTERN

_LOCAL = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?(.+)$", re.S)


def iter_reference_holders(node: Any) -> Iterator[dict[str, Any]]:
    """Every object with a string ``reference`` (Reference datatypes), depth first."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for key, value in node.items():
            if isinstance(value, dict | list) and key != "reference":
                yield from iter_reference_holders(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_reference_holders(item)


def local_target(reference: str, bases: tuple[str, ...] = ()) -> str | None:
    """``Type/id`` for a reference to a resource on this server, else None.

    Relative ``Type/id`` (optionally ``/_history/n``) and absolute URLs on one of ``bases`` count;
    ``#contained``, ``urn:``, other servers and conditional references do not.
    """
    ref = reference
    if "://" in ref:
        for base in bases:
            prefix = base.rstrip("/") + "/"
            if ref.startswith(prefix):
                ref = ref[len(prefix) :]
                break
        else:
            return None
    m = _LOCAL.match(ref)
    if m is None or not is_resource_type(m.group(1)) or not ID_PATTERN.match(m.group(2)):
        return None
    return f"{m.group(1)}/{m.group(2)}"


def local_targets(resource: dict[str, Any], bases: tuple[str, ...] = ()) -> list[str]:
    """Sorted distinct ``Type/id`` targets of a resource's local references."""
    out = set()
    for holder in iter_reference_holders(resource):
        target = local_target(holder["reference"], bases)
        if target is not None:
            out.add(target)
    return sorted(out)


def conditional_reference(reference: str) -> tuple[str, str] | None:
    """``Patient?identifier=a|b`` → ("Patient", "identifier=a|b")."""
    m = _CONDITIONAL.match(reference)
    if m is None or not is_resource_type(m.group(1)):
        return None
    return m.group(1), m.group(2)


def rewrite(node: Any, mapping: dict[str, str]) -> Any:
    """Replace, in place, every string equal to a key of ``mapping`` (Reference, uri, canonical)
    and every ``urn:`` key quoted inside narrative ``div`` XHTML (hrefs, img src)."""
    urn_keys = [k for k in mapping if k.startswith("urn:")]

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, str):
                    if v in mapping:
                        value[k] = mapping[v]
                    elif k == "div" and urn_keys and "urn:" in v:
                        for key in urn_keys:
                            v = v.replace(f'"{key}"', f'"{mapping[key]}"')
                        value[k] = v
                elif isinstance(v, dict | list):
                    walk(v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, str) and v in mapping:
                    value[i] = mapping[v]
                elif isinstance(v, dict | list):
                    walk(v)
        return value

    return walk(node)


def rewrite_conditional(
    node: Any, resolve: Callable[[str, str], str], on_unresolved_urn: Callable[[str], None]
) -> None:
    """Resolve ``Type?query`` references in place with ``resolve(type, query) → Type/id``, and
    report ``urn:`` references no entry of the bundle defined."""
    for holder in iter_reference_holders(node):
        ref = holder["reference"]
        cond = conditional_reference(ref)
        if cond is not None:
            holder["reference"] = resolve(*cond)
        elif ref.startswith(("urn:uuid:", "urn:oid:")):
            on_unresolved_urn(ref)
