"""Operation input: a ``Parameters`` body (POST) or simple query parameters (GET) → ``Params``.

Pure functions checked against the OperationDefinition's ``in`` parameters (operations.html):
an unknown name, a wrong value type, too many or too few occurrences are 400s with an
OperationOutcome naming the parameter, so a handler only ever sees well-formed input. Only
primitive (and Reference) parameters may come from the URL; everything else needs a POST body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from resources.registry import is_resource_type
from resources.validation import ResourceInvalid, validate_resource
from server.errors import FhirError, Issue

# Query parameters any operation accepts: formatting, and the paging token of a paged result.
PASSTHROUGH = frozenset({"_format", "_pretty"})
CONTROL = frozenset({"_page"})

_INT = re.compile(r"^-?[0-9]{1,10}$")
_DATE = re.compile(r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$")
_INSTANT = re.compile(
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:"
    r"([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$"
)
_DATETIME = re.compile(
    r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:"
    r"([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$"
)
_CODE = re.compile(r"^[^\s]+( [^\s]+)*$")
_STRINGY = {"string", "code", "id", "uri", "url", "canonical", "markdown", "oid", "uuid"}
MAX_QUERY_VALUE = 2048


@dataclass
class Params:
    """Validated input: ``values[name]`` is a list of value[x] / resource / part per occurrence."""

    values: dict[str, list[Any]] = field(default_factory=dict)
    control: dict[str, str] = field(default_factory=dict)

    def first(self, name: str) -> Any:
        items = self.values.get(name) or []
        return items[0] if items else None

    def all(self, name: str) -> list[Any]:
        return list(self.values.get(name) or [])


def _bad(diagnostics: str, name: str = "", code: str = "invalid") -> FhirError:
    return FhirError(
        400, code, diagnostics, expression=[f"Parameters.parameter('{name}')"] if name else []
    )


def _value_key(ptype: str) -> str:
    return "value" + ptype[0].upper() + ptype[1:]


def _check_cardinality(declared: dict[str, dict[str, Any]], values: dict[str, list[Any]]) -> None:
    for name, spec in declared.items():
        n = len(values.get(name, []))
        mx = str(spec.get("max", "*"))
        if mx != "*" and mx.isdigit() and n > int(mx):
            raise _bad(f"parameter {name!r} may occur at most {mx} time(s), got {n}", name)
        if n < int(spec.get("min", 0)):
            raise _bad(f"parameter {name!r} is required", name, "required")


def _one_value(param: dict[str, Any], spec: dict[str, Any], where: str) -> Any:
    name = param["name"]
    ptype = spec.get("type")
    value_keys = [k for k in param if k.startswith("value")]
    present = len(value_keys) + ("resource" in param) + ("part" in param)
    if present != 1:
        raise _bad(f"{where} ({name!r}) must have exactly one of value[x], resource or part", name)
    if ptype is None:
        if "part" not in param:
            raise _bad(f"parameter {name!r} takes parts", name)
        return param["part"]
    if ptype in ("Resource", "Any") or is_resource_type(ptype):
        resource = param.get("resource")
        if not isinstance(resource, dict):
            raise _bad(f"parameter {name!r} takes a resource ({ptype})", name)
        if ptype not in ("Resource", "Any") and resource.get("resourceType") != ptype:
            raise _bad(f"parameter {name!r} takes a {ptype}", name)
        return resource
    key = _value_key(ptype)
    if key not in param:
        raise _bad(f"parameter {name!r} takes {key}, got {value_keys or ['resource/part']}", name)
    return param[key]


def _without_open_resources(body: dict[str, Any], declared: dict[str, dict[str, Any]]) -> Any:
    """The body with the resources of ``Resource``-typed parameters stubbed out, for checking
    the Parameters' own structure: such a resource is what the operation examines (``$validate``
    reports its problems as issues with 200), so its validity is the handler's business."""
    open_names = {n for n, spec in declared.items() if spec.get("type") in ("Resource", "Any")}
    parameters = body.get("parameter")
    if not open_names or not isinstance(parameters, list):
        return body
    stubbed = [
        {**p, "resource": {"resourceType": "Parameters"}}
        if isinstance(p, dict)
        and p.get("name") in open_names
        and isinstance(p.get("resource"), dict)
        else p
        for p in parameters
    ]
    return {**body, "parameter": stubbed}


def from_body(body: Any, declared: dict[str, dict[str, Any]]) -> Params:
    """A POSTed ``Parameters`` resource (already JSON-decoded) → ``Params``; 400 when malformed."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError(400, "structure", "an operation body must be a Parameters resource")
    try:
        validate_resource(_without_open_resources(body, declared), "Parameters")
    except ResourceInvalid as exc:
        issues = [Issue("invalid", d, expression=[e] if e else []) for d, e in exc.issues]
        raise FhirError(400, "invalid", str(exc), issues=issues) from exc
    values: dict[str, list[Any]] = {}
    for i, param in enumerate(body.get("parameter") or []):
        where = f"Parameters.parameter[{i}]"
        name = param.get("name") if isinstance(param, dict) else None
        if not isinstance(name, str):
            raise _bad(f"{where} has no name")
        spec = declared.get(name)
        if spec is None:
            raise _bad(f"unknown parameter {name!r}", name, "not-supported")
        values.setdefault(name, []).append(_one_value(param, spec, where))
    _check_cardinality(declared, values)
    return Params(values)


def _resource_parameter(declared: dict[str, dict[str, Any]]) -> str | None:
    """The one ``in`` parameter that takes a resource, when there is exactly one."""
    names = [
        name
        for name, spec in declared.items()
        if spec.get("type") in ("Resource", "Any") or is_resource_type(str(spec.get("type")))
    ]
    return names[0] if len(names) == 1 else None


def from_resource_body(
    body: Any, declared: dict[str, dict[str, Any]], query: Iterable[tuple[str, str]]
) -> Params:
    """A POSTed bare resource as the operation's one resource parameter (operations.html:
    "if there is only one input parameter that is a resource, the resource may be the body");
    the other, primitive, inputs then come from the URL (``$validate?mode=create``)."""
    name = _resource_parameter(declared)
    if name is None:
        raise FhirError(400, "structure", "an operation body must be a Parameters resource")
    spec = declared[name]
    param = {"name": name, "resource": body}
    resource = _one_value(param, spec, "the request body")
    others = {k: v for k, v in declared.items() if k != name}
    out = from_query(query, {**others, name: {**spec, "min": 0}})
    if name in out.values:
        raise _bad(f"parameter {name!r} is the request body; do not also give it in the URL", name)
    out.values[name] = [resource]
    _check_cardinality(declared, out.values)
    return out


def is_parameters(body: Any) -> bool:
    return isinstance(body, dict) and body.get("resourceType") == "Parameters"


def _from_text(name: str, ptype: str | None, raw: str) -> Any:
    if not raw or len(raw) > MAX_QUERY_VALUE:
        raise _bad(f"parameter {name!r} has an empty or oversized value", name)
    if ptype in ("integer", "positiveInt", "unsignedInt"):
        if not _INT.match(raw):
            raise _bad(f"parameter {name!r} must be an integer, got {raw[:40]!r}", name)
        return int(raw)
    if ptype == "boolean":
        if raw not in ("true", "false"):
            raise _bad(f"parameter {name!r} must be true or false", name)
        return raw == "true"
    checks = {"date": _DATE, "instant": _INSTANT, "dateTime": _DATETIME}
    if ptype in checks:
        if not checks[ptype].match(raw):
            raise _bad(f"parameter {name!r} must be a FHIR {ptype}, got {raw[:40]!r}", name)
        return raw
    if ptype in _STRINGY:
        if ptype in ("code", "id") and not _CODE.match(raw):
            raise _bad(f"parameter {name!r} must be a code, got {raw[:40]!r}", name)
        return raw
    if ptype == "Reference":
        return {"reference": raw}
    raise _bad(f"parameter {name!r} ({ptype or 'parts'}) cannot be given in the URL; POST it", name)


def from_query(items: Iterable[tuple[str, str]], declared: dict[str, dict[str, Any]]) -> Params:
    """GET query parameters → ``Params`` (primitive parameters only)."""
    out = Params()
    for name, raw in items:
        if name in PASSTHROUGH:
            continue
        if name in CONTROL:
            if name in out.control:
                raise _bad(f"{name} may occur once", name)
            out.control[name] = raw
            continue
        spec = declared.get(name)
        if spec is None:
            raise _bad(f"unknown parameter {name!r}", name, "not-supported")
        out.values.setdefault(name, []).append(_from_text(name, spec.get("type"), raw))
    _check_cardinality(declared, out.values)
    return out


def check_query_on_post(items: Iterable[tuple[str, str]]) -> None:
    """On POST the input is the body; a stray URL parameter would be silently ignored."""
    for name, _ in items:
        if name not in PASSTHROUGH:
            raise _bad(f"on POST give {name!r} in the Parameters body, not in the URL", name)
