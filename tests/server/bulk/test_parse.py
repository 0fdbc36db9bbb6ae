"""Each line is checked before any transaction (server/bulk/load.py ``parse_line``)."""

from __future__ import annotations

import pytest

from server.bulk.load import parse_line
from server.bulk.ndjson import Line
from server.errors import FhirError


@pytest.mark.parametrize(
    ("text", "status", "words"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"id": "x"}', 400, "no resourceType"),
        (b'{"resourceType": "Patient"}', 400, "needs a valid id"),
        (b'{"resourceType": "Patient", "id": "bad id!"}', 400, "needs a valid id"),
        (b'{"resourceType": "NoSuchType", "id": "x"}', 400, "resourceType"),
        (b'{"resourceType": "Patient", "id": "x", "gender": 7}', 400, "JSON string"),
    ],
)
def test_bad_lines_fail_as_a_put_would(text: bytes, status: int, words: str) -> None:
    with pytest.raises(FhirError) as info:
        parse_line(Line("f.ndjson", 1, text), None, ())
    assert info.value.status == status
    assert words in " ".join(i.diagnostics for i in info.value.issues)


def test_a_type_not_asked_for_is_skipped() -> None:
    line = Line("f.ndjson", 1, b'{"resourceType": "Patient", "id": "x"}')
    assert parse_line(line, frozenset({"Coverage"}), ()) is None


def test_a_line_knows_its_reference_targets_but_not_itself() -> None:
    text = (
        b'{"resourceType": "Patient", "id": "x", "link": [{"type": "seealso", '
        b'"other": {"reference": "Patient/x"}}], "managingOrganization": '
        b'{"reference": "Organization/o"}}'
    )
    item = parse_line(Line("f.ndjson", 1, text), None, ())
    assert item is not None and item.targets == frozenset({"Organization/o"})
