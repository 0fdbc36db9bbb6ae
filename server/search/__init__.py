"""FHIR R4 search in three pure stages plus an executor (ARCHITECTURE.md, "Search as three pure
stages").

- ``params.parse``: query/form pairs → ``model.SearchRequest`` (names and modifiers checked
  against the registry; unknown/malformed → warning, or 400 with ``Prefer: handling=strict``).
- ``query.build``: clauses → one flat MongoDB filter + ``residual`` fragments, through one
  translator per type in ``types/`` (chains/_has resolved through injected callbacks).
- ``execute``: runs it (access filter ANDed into every query), pages through stored result
  snapshots, adds _include/_revinclude; ``execute.match`` is the conditional-operation API.
- ``index``: write-time extraction into the stored document's ``idx`` and the indexes over it.

The ``idx`` encoding (one list per field; field names come only from the registry):

=============  ============================================================================
type           fields and values
=============  ============================================================================
token          ``<code>``: ``system|code``, ``code`` and ``|code`` (no system);
               ``<code>@text``: normalized display/text and their words
string         ``<code>``: normalized (casefold, accents stripped) parts; ``<code>@exact``
date           ``<code>@lo`` / ``<code>@hi``: UTC bounds as fixed-width text;
               ``<code>@eq``: precision keys of every unit containing the value ("1970",
               "1970-03", …; in ``idx`` only, not ``ks``: docs/indexing.md);
               ``<code>@day``: UTC days touched (``~`` if > 62 days)
reference      ``<code>``: ``Type/id`` (absolute URLs and canonicals as written);
               ``<code>@id``: identifier tokens (``:identifier``)
quantity       ``<code>``: numbers; ``<code>@u``: ``unit<US>sortable-number`` per unit form
number         ``<code>``: numbers
uri            ``<code>``: the uri (canonicals also without ``|version``)
composite      ``<code>``: ``first<RS>second`` keys (second sortable for ranges)
compartment    ``@patient``: ``Patient/<id>`` of the patient compartment
compound       ``a+b``: ``<a value><US><b value>`` for common pairs (patient+status, code+date…)
=============  ============================================================================
"""
