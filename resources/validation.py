"""Structural validation of incoming resources against the FHIR R4 definitions.

Three layers, cheapest first: FHIR JSON rules (no nulls, no empty strings, arrays or objects, per
json.html); the official R4 4.0.1 JSON schema of the type (JSON types — the models coerce "yes"
to true, the schema does not —, primitive regexes, required code enums, unknown elements); then
the ``fhir.resources.R4B`` model (cardinality, choice-type exclusivity, invariants). The 18 R4
types that R4B dropped (MedicinalProduct*, some Substance*, *EvidenceSynthesis) get the first two. Errors come back as a list
of issues with a FHIRPath ``expression`` so a client can find the bad element.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from pydantic import ValidationError

from resources.registry import DEFINITIONS, is_resource_type

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class ResourceInvalid(Exception):
    """Raised with ``issues``: a list of (diagnostics, expression) pairs."""

    def __init__(self, issues: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(d for d, _ in issues))
        self.issues = issues


def _path(root: str, loc: tuple[Any, ...] | list[Any]) -> str:
    out = root
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}"
    return out


def _json_rules(
    value: Any, path: str, issues: list[tuple[str, str]], in_array: bool = False
) -> None:
    """FHIR JSON forbids null (except as an array placeholder), '', [] and {} anywhere."""
    if value is None:
        if not in_array:
            issues.append(("null is not allowed in FHIR JSON; omit the element", path))
    elif isinstance(value, str):
        if value == "":
            issues.append(("empty strings are not allowed in FHIR JSON", path))
    elif isinstance(value, list):
        if not value:
            issues.append(("empty arrays are not allowed in FHIR JSON", path))
        for i, item in enumerate(value):
            _json_rules(item, f"{path}[{i}]", issues, in_array=True)
    elif isinstance(value, dict):
        if not value:
            issues.append(("empty objects are not allowed in FHIR JSON", path))
        for key, item in value.items():
            if key == "resourceType":
                continue
            _json_rules(item, f"{path}.{key}", issues)


@cache
def _model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError):
        return None


@cache
def _schema_definitions() -> dict[str, Any]:
    schema = json.loads((DEFINITIONS / "fhir.schema.json").read_text(encoding="utf-8"))
    return dict(schema["definitions"])


@cache
def _schema_validator(resource_type: str) -> Any:
    import jsonschema

    return jsonschema.Draft6Validator(
        {"$ref": f"#/definitions/{resource_type}", "definitions": _schema_definitions()}
    )


def _schema_issues(resource: dict[str, Any], resource_type: str) -> list[tuple[str, str]]:
    """JSON types, primitive regexes, required-binding enums and unknown elements, per R4 4.0.1."""
    issues: dict[str, str] = {}
    for err in _schema_validator(resource_type).iter_errors(resource):
        path = _path(resource_type, list(err.absolute_path))
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = set(err.schema.get("properties", {}))
            for name in err.instance:
                if name not in known:
                    issues.setdefault(f"{path}.{name}", "unknown element")
            continue
        if err.validator == "required" and isinstance(err.instance, dict):
            for name in err.validator_value:
                if name not in err.instance:
                    issues.setdefault(f"{path}.{name}", "required element is missing (min 1)")
            continue
        issues.setdefault(path, err.message[:300])
    return [(msg, path) for path, msg in issues.items()]


def validate_resource(resource: Any, resource_type: str) -> None:
    """Raise ``ResourceInvalid`` unless ``resource`` is a valid R4 ``resource_type``."""
    if not isinstance(resource, dict):
        raise ResourceInvalid([("the body must be a JSON object holding a FHIR resource", "")])
    actual = resource.get("resourceType")
    if not isinstance(actual, str) or not is_resource_type(actual):
        raise ResourceInvalid([(f"unknown or missing resourceType: {actual!r}", "resourceType")])
    if actual != resource_type:
        raise ResourceInvalid(
            [
                (
                    f"resourceType {actual!r} does not match the URL type {resource_type!r}",
                    "resourceType",
                )
            ]
        )
    rid = resource.get("id")
    if rid is not None and (not isinstance(rid, str) or not ID_PATTERN.match(rid)):
        raise ResourceInvalid([("id must match [A-Za-z0-9-.]{1,64}", f"{resource_type}.id")])
    issues: list[tuple[str, str]] = []
    _json_rules(resource, resource_type, issues)
    if issues:
        raise ResourceInvalid(issues)
    issues = _schema_issues(resource, resource_type)
    if issues:
        raise ResourceInvalid(issues)
    model = _model(resource_type)
    if model is not None:
        try:
            model.model_validate(resource)
        except ValidationError as exc:
            issues = [
                (_message(err), _path(resource_type, err["loc"]))
                for err in exc.errors(include_url=False)
            ]
        except (TypeError, ValueError) as exc:  # some model validators raise plainly
            issues = [(str(exc)[:500], resource_type)]
    if issues:
        raise ResourceInvalid(issues)


def _message(err: Any) -> str:
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        return "unknown element"
    return msg.removeprefix("Value error, ")
