"""FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html): a Parameters resource of operations.

Path evaluation supports the subset real clients send — ``Type.elem.elem``, ``[n]``,
``first()``, ``last()`` and ``where(a.b = 'literal' and c = true)`` — and answers anything else
with a 400 naming the unsupported construct, rather than guessing. Paths here must *locate*
elements (to replace or delete them in place), which a FHIRPath value engine such as fhirpathpy
does not do; the subset is small enough to own. Cardinality (is ``name`` a list?) comes from the
official R4 JSON schema so ``add`` appends to repeating elements and sets single ones.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from resources.registry import DEFINITIONS
from server.patch.errors import PatchErrors

OPERATION_TYPES = ("add", "insert", "delete", "replace", "move")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = re.compile(r"\[(\d+)\]")


_ERRORS = PatchErrors("FHIRPath Patch", lambda i: f"Parameters.parameter[{i}]")
malformed = _ERRORS.malformed
unprocessable = _ERRORS.unprocessable


# ------------------------------------------------------------------------------ schema lookup
@cache
def _definitions() -> dict[str, Any]:
    schema = json.loads((DEFINITIONS / "fhir.schema.json").read_text(encoding="utf-8"))
    defs: dict[str, Any] = schema["definitions"]
    return defs


def schema_prop(type_name: str | None, name: str) -> tuple[bool, str | None] | None:
    """(is_array, element type) of ``type_name.name``; None when the schema does not know it."""
    if type_name is None:
        return None
    prop = (_definitions().get(type_name) or {}).get("properties", {}).get(name)
    if prop is None:
        return None
    is_array = prop.get("type") == "array"
    ref = (prop.get("items") or {}).get("$ref") if is_array else prop.get("$ref")
    return is_array, ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


# ------------------------------------------------------------------------------- path subset
@dataclass
class Loc:
    """One located element: ``container[key]`` (key is an index when container is a list)."""

    container: Any
    key: Any
    type_name: str | None

    @property
    def value(self) -> Any:
        return self.container[self.key]


@dataclass(frozen=True)
class Step:
    kind: str  # name | index | first | last | where
    name: str = ""
    index: int = 0
    criteria: tuple[tuple[tuple[str, ...], Any], ...] = ()


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses."""
    parts, depth, quote, cur = [], 0, False, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            cur += ch
            if ch == "\\" and i + 1 < len(text):
                cur += text[i + 1]
                i += 1
            elif ch == "'":
                quote = False
        elif ch == "'":
            quote = True
            cur += ch
        elif ch == "(":
            depth += 1
            cur += ch
        elif ch == ")":
            depth -= 1
            cur += ch
        elif depth == 0 and text.startswith(sep, i):
            parts.append(cur)
            cur = ""
            i += len(sep)
            continue
        else:
            cur += ch
        i += 1
    if quote or depth:
        raise ValueError("unbalanced quotes or parentheses")
    parts.append(cur)
    return parts


def _literal(text: str) -> Any:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] == "'":
        return re.sub(r"\\(.)", r"\1", t[1:-1])
    if t in ("true", "false"):
        return t == "true"
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    if re.fullmatch(r"-?\d+\.\d+", t):
        return Decimal(t)  # resources hold exact decimals (server.fhirjson); 0.1 == 0.1 there
    raise ValueError(f"unsupported literal {t!r}")


def _criteria(text: str) -> tuple[tuple[tuple[str, ...], Any], ...]:
    out = []
    for clause in _split_top(text, " and "):
        left, sep, right = clause.partition("=")
        if not sep or left.endswith(("!", "<", ">")):
            raise ValueError(f"where() supports only 'path = literal' clauses, got {clause!r}")
        names = tuple(p.strip() for p in left.strip().split("."))
        if not all(_IDENT.fullmatch(n) for n in names):
            raise ValueError(f"unsupported path in where(): {left.strip()!r}")
        out.append((names, _literal(right)))
    return tuple(out)


def parse_path(path: str, resource_type: str) -> list[Step]:
    """Parse the supported subset; ``ValueError`` names what is not supported."""
    segments = _split_top(path.strip(), ".")
    if not segments or segments[0] != resource_type:
        raise ValueError(f"path must start with {resource_type!r}")
    steps: list[Step] = []
    for seg in segments[1:]:
        seg = seg.strip()
        fn = re.fullmatch(r"(first|last)\(\)", seg)
        if fn:
            steps.append(Step(fn.group(1)))
            continue
        where = re.fullmatch(r"where\((.*)\)", seg, re.S)
        if where:
            steps.append(Step("where", criteria=_criteria(where.group(1))))
            continue
        m = _IDENT.match(seg)
        if not m:
            raise ValueError(f"unsupported path segment {seg!r}")
        steps.append(Step("name", name=m.group(0)))
        rest = seg[m.end() :]
        while rest:
            im = _INDEX.match(rest)
            if not im:
                raise ValueError(f"unsupported path segment {seg!r}")
            steps.append(Step("index", index=int(im.group(1))))
            rest = rest[im.end() :]
    return steps


def _child(loc_value: Any, type_name: str | None, name: str) -> list[Loc]:
    if not isinstance(loc_value, dict):
        return []
    key = name
    if name not in loc_value:
        # choice elements: Observation.value → valueQuantity
        choices = [
            k for k in loc_value if k.startswith(name) and k[len(name) : len(name) + 1].isupper()
        ]
        if len(choices) != 1:
            return []
        key = choices[0]
    info = schema_prop(type_name, key)
    child_type = info[1] if info else None
    value = loc_value[key]
    if isinstance(value, list):
        return [Loc(value, i, child_type) for i in range(len(value))]
    return [Loc(loc_value, key, child_type)]


def _values(value: Any, names: tuple[str, ...]) -> list[Any]:
    current = [value]
    for n in names:
        nxt: list[Any] = []
        for v in current:
            if isinstance(v, dict) and n in v:
                c = v[n]
                nxt.extend(c if isinstance(c, list) else [c])
        current = nxt
    return current


def evaluate(resource: dict[str, Any], steps: list[Step]) -> list[Loc]:
    root = {"$": resource}
    locs = [Loc(root, "$", resource.get("resourceType"))]
    for step in steps:
        if step.kind == "name":
            locs = [c for loc in locs for c in _child(loc.value, loc.type_name, step.name)]
        elif step.kind == "index":
            locs = locs[step.index : step.index + 1]
        elif step.kind == "first":
            locs = locs[:1]
        elif step.kind == "last":
            locs = locs[-1:]
        else:
            locs = [
                loc
                for loc in locs
                if all(lit in _values(loc.value, names) for names, lit in step.criteria)
            ]
    return locs


# ------------------------------------------------------------------------ Parameters parsing
def _part_value(part: dict[str, Any], index: int) -> Any:
    keys = [k for k in part if k.startswith("value") and k != "value"]
    if len(keys) > 1:
        raise malformed("a part has more than one value[x]", index)
    if keys:
        return copy.deepcopy(part[keys[0]])
    if "part" in part:
        return _parts_object(part["part"], index)
    if "resource" in part:
        return copy.deepcopy(part["resource"])
    raise malformed(f"part {part.get('name')!r} has no value", index)


def _parts_object(parts: Any, index: int) -> dict[str, Any]:
    """A complex value given as nested parts (``name`` + ``value[x]``)."""
    if not isinstance(parts, list):
        raise malformed("'part' must be a list", index)
    obj: dict[str, Any] = {}
    for p in parts:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise malformed("each part needs a name", index)
        v = _part_value(p, index)
        if p["name"] in obj:
            prev = obj[p["name"]]
            obj[p["name"]] = [*(prev if isinstance(prev, list) else [prev]), v]
        else:
            obj[p["name"]] = v
    return obj


def _shape(value: Any, type_name: str | None) -> Any:
    """Wrap single values in lists where the schema says the element repeats."""
    if not isinstance(value, dict) or type_name is None:
        return value
    out = {}
    for k, v in value.items():
        info = schema_prop(type_name, k)
        if info is None:
            out[k] = v
            continue
        is_array, child = info
        items = v if isinstance(v, list) else [v]
        items = [_shape(x, child) for x in items]
        out[k] = items if is_array else items[0] if len(items) == 1 else items
    return out


@dataclass
class Operation:
    type: str
    path: list[Step]
    raw_path: str
    name: str | None = None
    value: Any = None
    has_value: bool = False
    index: int | None = None
    source: int | None = None
    destination: int | None = None


def parse_parameters(params: Any, resource_type: str) -> list[Operation]:
    if not isinstance(params, dict) or params.get("resourceType") != "Parameters":
        raise malformed("the body must be a Parameters resource")
    ops: list[Operation] = []
    entries = params.get("parameter")
    if not isinstance(entries, list) or not entries:
        raise malformed("Parameters.parameter must list at least one operation")
    for i, param in enumerate(entries):
        if not isinstance(param, dict) or param.get("name") != "operation":
            raise malformed("every parameter must be named 'operation'", i)
        parts: dict[str, dict[str, Any]] = {}
        for p in param.get("part") or []:
            if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                raise malformed("each part needs a name", i)
            if p["name"] in parts:
                raise malformed(f"part {p['name']!r} is repeated", i)
            parts[p["name"]] = p
        op_type = parts.get("type", {}).get("valueCode")
        if op_type not in OPERATION_TYPES:
            raise malformed(f"type must be one of {', '.join(OPERATION_TYPES)}", i)
        raw_path = parts.get("path", {}).get("valueString")
        if not isinstance(raw_path, str):
            raise malformed("path (valueString) is required", i)
        try:
            steps = parse_path(raw_path, resource_type)
        except ValueError as exc:
            raise malformed(f"unsupported path {raw_path!r}: {exc}", i) from exc
        op = Operation(op_type, steps, raw_path)
        if op_type == "add":
            name = parts.get("name", {}).get("valueString")
            if not isinstance(name, str) or not _IDENT.fullmatch(name):
                raise malformed("add needs a name (valueString)", i)
            op.name = name
        if op_type in ("add", "insert", "replace"):
            if "value" not in parts:
                raise malformed(f"{op_type} needs a value", i)
            op.value, op.has_value = _part_value(parts["value"], i), True
        for field in {"insert": ("index",), "move": ("source", "destination")}.get(op_type, ()):
            v = parts.get(field, {}).get("valueInteger")
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise malformed(f"{op_type} needs a non-negative {field} (valueInteger)", i)
            setattr(op, field, v)
        ops.append(op)
    return ops


# ---------------------------------------------------------------------------------- applying
def _one(locs: list[Loc], op: Operation, i: int) -> Loc:
    if len(locs) != 1:
        raise unprocessable(f"path {op.raw_path!r} matched {len(locs)} elements, expected 1", i)
    return locs[0]


def _list_field(
    doc: dict[str, Any], op: Operation, i: int
) -> tuple[dict[str, Any], str, str | None]:
    """For insert/move: the object holding the list named by the path's last step."""
    if not op.path or op.path[-1].kind != "name":
        raise unprocessable(f"path {op.raw_path!r} must end with an element name", i)
    parent = _one(evaluate(doc, op.path[:-1]), op, i)
    if not isinstance(parent.value, dict):
        raise unprocessable(f"{op.raw_path!r} is not inside an object", i)
    name = op.path[-1].name
    info = schema_prop(parent.type_name, name)
    if info is not None and not info[0]:
        raise unprocessable(f"{op.raw_path!r} is not a repeating element", i)
    return parent.value, name, info[1] if info else None


def apply_fhirpath_patch(resource: dict[str, Any], params: Any) -> dict[str, Any]:
    """Return a patched deep copy of ``resource``; raise ``FhirError`` on any failure."""
    resource_type = resource.get("resourceType", "")
    ops = parse_parameters(params, resource_type)
    doc = copy.deepcopy(resource)
    for i, op in enumerate(ops):
        if op.type == "delete":
            locs = evaluate(doc, op.path)
            if not locs:
                continue
            loc = _one(locs, op, i)
            if loc.key == "$":
                raise unprocessable("cannot delete the resource itself", i)
            _delete(doc, loc)
        elif op.type == "replace":
            loc = _one(evaluate(doc, op.path), op, i)
            if loc.key == "$":
                raise unprocessable("cannot replace the resource itself", i)
            loc.container[loc.key] = _shape(op.value, loc.type_name)
        elif op.type == "add":
            loc = _one(evaluate(doc, op.path), op, i)
            if not isinstance(loc.value, dict):
                raise unprocessable(
                    f"{op.raw_path!r} is not an element that can hold {op.name!r}", i
                )
            assert op.name is not None
            info = schema_prop(loc.type_name, op.name)
            value = _shape(op.value, info[1] if info else None)
            target = loc.value
            if (info is not None and info[0]) or isinstance(target.get(op.name), list):
                target.setdefault(op.name, []).append(value)
            elif op.name in target:
                raise unprocessable(f"{op.raw_path}.{op.name} already has a value", i)
            else:
                target[op.name] = value
        elif op.type == "insert":
            obj, name, child = _list_field(doc, op, i)
            items = obj.get(name, [])
            if not isinstance(items, list):
                raise unprocessable(f"{op.raw_path!r} is not a list", i)
            assert op.index is not None
            if op.index > len(items):
                raise unprocessable(f"index {op.index} is out of range (length {len(items)})", i)
            items.insert(op.index, _shape(op.value, child))
            obj[name] = items
        else:  # move
            obj, name, _ = _list_field(doc, op, i)
            items = obj.get(name)
            assert op.source is not None and op.destination is not None
            if (
                not isinstance(items, list)
                or op.source >= len(items)
                or op.destination >= len(items)
            ):
                have = len(items) if isinstance(items, list) else 0
                raise unprocessable(f"source/destination out of range (length {have})", i)
            items.insert(op.destination, items.pop(op.source))
    return doc


def _delete(doc: dict[str, Any], loc: Loc) -> None:
    container = loc.container
    del container[loc.key]
    if isinstance(container, list) and not container:
        # FHIR JSON has no empty arrays: drop the emptied element from its owner.
        for owner in _owners(doc, container):
            for k, v in list(owner.items()):
                if v is container:
                    del owner[k]


def _owners(node: Any, target: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for v in node.values():
            if v is target:
                found.append(node)
            else:
                found.extend(_owners(v, target))
    elif isinstance(node, list):
        for v in node:
            found.extend(_owners(v, target))
    return found
