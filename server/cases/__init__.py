"""The second-opinion case engine: the server moves a case, parties ask it to (docs/cases.md).

The rules are pure and live in ``resources/`` (eligibility, matching, the Task action table,
report status moves) and ``profiles/`` (what a code means); this package is the adapter that
reads the facts through the repository, applies the rules and writes the consequences in the
client's own transaction (``HookPoint.PRE_COMMIT``), recording every transition as a Provenance.
"""
