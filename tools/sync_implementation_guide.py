"""Rewrites the ImplementationGuide's ``definition.resource`` list from the definition files.

Why a tool: the guide resource is data a partner downloads, so it is committed; but its list
must match the files under profiles/definitions/ exactly (tests/profiles/test_implementation_guide.py
checks it). Run ``python tools/sync_implementation_guide.py`` after adding a definition file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent / "profiles" / "definitions"
IG_FILE = ROOT / "ImplementationGuide-consilium.json"
NOT_RESOURCES = {"snomed/hierarchy-subset.json"}
# R4B-shaped data referenced by canonical only (R4 has no such resource; docs/notifications.md).
NOT_R4_TYPES = {"SubscriptionTopic"}


def definition_entries() -> list[dict[str, Any]]:
    entries = []
    for path in sorted(ROOT.rglob("*.json")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in NOT_RESOURCES or path == IG_FILE:
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        for r in doc if isinstance(doc, list) else [doc]:
            if r["resourceType"] in NOT_R4_TYPES:
                continue
            name = r.get("title") or r.get("name") or r["id"]
            entries.append(
                {"reference": {"reference": f"{r['resourceType']}/{r['id']}"}, "name": name}
            )
    return sorted(entries, key=lambda e: e["reference"]["reference"])


def main() -> None:
    ig = json.loads(IG_FILE.read_text(encoding="utf-8"))
    known = {e["reference"]["reference"]: e for e in ig["definition"]["resource"]}
    merged = [known.get(e["reference"]["reference"], e) for e in definition_entries()]
    ig["definition"]["resource"] = merged
    IG_FILE.write_text(json.dumps(ig, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{IG_FILE.name}: {len(merged)} definitions")


if __name__ == "__main__":
    main()
