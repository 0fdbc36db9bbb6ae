"""Regenerate resources/definitions/r4b-differences.json: where the R4B models differ from R4.

Why a committed file: which types the R4B models of ``fhir.resources`` describe differently from
R4 4.0.1 decides whether those models may validate R4 content (``resources/r4b.py``); committing
the list makes a change of either side (an upgrade of ``fhir.resources``, regenerated R4
definitions) a reviewed diff, and ``tests/resources/test_r4b.py`` recomputes and compares it.
Usage::

    python tools/r4b_differences.py
"""

from __future__ import annotations

import json

from resources.r4b import DIFFERENCES_FILE, compare


def main() -> None:
    DIFFERENCES_FILE.write_text(json.dumps(compare(), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
