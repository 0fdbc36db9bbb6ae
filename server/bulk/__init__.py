"""Bulk load of FHIR NDJSON (``consilium import``): insurers' rosters and test data sets.

Every line goes through the repository exactly as a REST ``PUT [type]/[id]`` would (validation,
profiles, hooks, referential integrity, versioning with history, search index values, audit),
many lines per transaction: ``ndjson`` reads the files, ``load`` commits the batches and
isolates bad lines, ``command`` is the CLI. See docs/import.md.
"""
