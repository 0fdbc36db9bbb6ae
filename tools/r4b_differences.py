"""Regenerate resources/definitions/r4b-differences.json: where R4B models can refuse valid R4.

Why a committed file: which R4 elements the R4B models of ``fhir.resources`` would refuse decides
when those models may check R4 content after the R4 walker (``resources/r4b.py``); committing the
directional comparison makes a change of either side (an upgrade of ``fhir.resources``,
regenerated R4 definitions) a reviewed diff, and ``tests/resources/test_r4b.py`` recomputes and
compares it. Usage::

    python tools/r4b_differences.py
"""

from __future__ import annotations

import json

from resources.r4b import DIFFERENCES_FILE, compare


def main() -> None:
    DIFFERENCES_FILE.write_text(json.dumps(compare(), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
