"""JSON Patch (RFC 6902) over plain JSON values, with JSON Pointer (RFC 6901) paths.

Written here rather than taken from a library because it is small, and because every failure
must become a precise ``FhirError`` (400 for a malformed patch document, 422 when a well-formed
patch cannot be applied to this resource, e.g. a failed ``test`` or a missing path) instead of a
library exception. The input document is never mutated: a patch either applies whole or not at
all, which is what makes PATCH atomic before the repository even sees the result.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from server import fhirjson
from server.patch.errors import PatchErrors

OPS = ("add", "remove", "replace", "move", "copy", "test")
_MISSING = object()


_ERRORS = PatchErrors("JSON Patch", lambda i: f"patch[{i}]")
malformed = _ERRORS.malformed
unprocessable = _ERRORS.unprocessable


def parse_pointer(pointer: Any, index: int | None = None) -> list[str]:
    """``/a/b~1c/~0d`` → ``["a", "b/c", "~d"]`` (RFC 6901 section 4: ~1 first, then ~0)."""
    if not isinstance(pointer, str):
        raise malformed("a path/from must be a string", index)
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise malformed(f"JSON pointer {pointer!r} must start with '/'", index)
    tokens = []
    for raw in pointer[1:].split("/"):
        i = 0
        while True:
            i = raw.find("~", i)
            if i < 0:
                break
            if i + 1 >= len(raw) or raw[i + 1] not in "01":
                raise malformed(f"bad escape in JSON pointer {pointer!r}", index)
            i += 2
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _array_index(tok: str, length: int, *, allow_end: bool, index: int) -> int:
    if tok == "-" and allow_end:
        return length
    if not tok.isdigit() or (len(tok) > 1 and tok.startswith("0")):
        raise unprocessable(f"{tok!r} is not an array index", index)
    i = int(tok)
    if i > length or (i == length and not allow_end):
        raise unprocessable(f"array index {i} is out of range (length {length})", index)
    return i


def _resolve(doc: Any, tokens: list[str], index: int) -> Any:
    node = doc
    for tok in tokens:
        if isinstance(node, dict):
            if tok not in node:
                raise unprocessable(f"path segment {tok!r} does not exist", index)
            node = node[tok]
        elif isinstance(node, list):
            node = node[_array_index(tok, len(node), allow_end=False, index=index)]
        else:
            raise unprocessable(f"cannot descend into a scalar at {tok!r}", index)
    return node


def _parent(doc: Any, tokens: list[str], index: int) -> tuple[Any, str]:
    if not tokens:
        raise unprocessable("this operation cannot target the whole document", index)
    return _resolve(doc, tokens[:-1], index), tokens[-1]


def _add(doc: Any, tokens: list[str], value: Any, index: int) -> Any:
    if not tokens:
        return value
    parent, key = _parent(doc, tokens, index)
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(key, len(parent), allow_end=True, index=index), value)
    else:
        raise unprocessable("the parent of the target is not an object or array", index)
    return doc


def _remove(doc: Any, tokens: list[str], index: int) -> tuple[Any, Any]:
    parent, key = _parent(doc, tokens, index)
    if isinstance(parent, dict):
        if key not in parent:
            raise unprocessable(f"{key!r} does not exist", index)
        return doc, parent.pop(key)
    if isinstance(parent, list):
        return doc, parent.pop(_array_index(key, len(parent), allow_end=False, index=index))
    raise unprocessable("the parent of the target is not an object or array", index)


def _equal(a: Any, b: Any) -> bool:
    """RFC 6902 section 4.6 equality: types matter (1 is not true), objects ignore key order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        # As numbers: 1.50 equals 1.5 and an older stored float 0.1 equals a sent 0.1.
        return fhirjson.to_decimal(a) == fhirjson.to_decimal(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def validate_patch(patch: Any) -> list[dict[str, Any]]:
    """Check the document's shape before touching the resource (all errors are 400)."""
    if not isinstance(patch, list):
        raise malformed("the body must be a JSON array of operations")
    for i, op in enumerate(patch):
        if not isinstance(op, dict):
            raise malformed("each operation must be a JSON object", i)
        name = op.get("op")
        if name not in OPS:
            raise malformed(f"unknown op {name!r}; expected one of {', '.join(OPS)}", i)
        if "path" not in op:
            raise malformed("'path' is required", i)
        parse_pointer(op["path"], i)
        if name in ("add", "replace", "test") and "value" not in op:
            raise malformed(f"'{name}' needs a 'value'", i)
        if name in ("move", "copy"):
            if "from" not in op:
                raise malformed(f"'{name}' needs a 'from'", i)
            parse_pointer(op["from"], i)
    return patch


def apply_patch(document: Any, patch: Any) -> Any:
    """Return a patched deep copy of ``document``; raise ``FhirError`` on any failure."""
    ops = validate_patch(patch)
    doc = copy.deepcopy(document)
    for i, op in enumerate(ops):
        name = op["op"]
        path = parse_pointer(op["path"], i)
        if name == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]), i)
        elif name == "remove":
            doc, _ = _remove(doc, path, i)
        elif name == "replace":
            if not path:
                doc = copy.deepcopy(op["value"])
                continue
            _resolve(doc, path, i)  # must exist
            doc, _ = _remove(doc, path, i)
            doc = _add(doc, path, copy.deepcopy(op["value"]), i)
        elif name == "move":
            source = parse_pointer(op["from"], i)
            if source == path:
                _resolve(doc, source, i)
                continue
            if path[: len(source)] == source:
                raise unprocessable("cannot move a value into one of its own children", i)
            doc, value = _remove(doc, source, i)
            doc = _add(doc, path, value, i)
        elif name == "copy":
            value = _resolve(doc, parse_pointer(op["from"], i), i)
            doc = _add(doc, path, copy.deepcopy(value), i)
        else:  # test
            actual = _resolve(doc, path, i)
            if not _equal(actual, op["value"]):
                raise unprocessable(f"test failed at {op['path']!r}", i)
    return doc
