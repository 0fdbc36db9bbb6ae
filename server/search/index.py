"""Extraction of search index values at write time, and the MongoDB indexes that serve them.

``extract_index`` runs every search parameter's FHIRPath expression on the resource and stores
the encoded values under ``idx`` (one list per field; encodings in ``server/search/types``), so a
query never reads resource JSON. Besides one field per parameter it stores:

- ``@patient``: the ``Patient/<id>`` references of the patient compartment (compartment search);
- compound fields ``a+b`` (cross product ``<a value><SEP><b value>``) for the common pairs
  (patient+status, patient+code, code+date…), so the usual combinations are one index range.

The values of the indexed fields are also written as one list of text keys, ``ks``
(``server/search/keys.py``), under ONE multikey index partial on ``{deleted: false}``: a write
costs one index entry per value it holds instead of one per parameter, and no parameter is left
unindexed by MongoDB's 64-index limit. Queries keep the ``idx.*`` form; the read primitive turns
their driving conjunct into its ``ks`` equivalent (``keys.drive``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from pymongo import ASCENDING, IndexModel

from resources.registry import SearchParam, patient_compartment, search_params_for
from server.search import keys
from server.search.fhirpath import evaluate
from server.search.text import SEP
from server.search.types import composite, date, number, quantity, reference, string, token, uri

SAFE_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
COMPARTMENT = "@patient"
Extractor = Callable[[str, Sequence[Any]], dict[str, list[Any]]]
EXTRACTORS: dict[str, Extractor] = {
    "token": token.extract,
    "string": string.extract,
    "date": date.extract,
    "reference": reference.extract,
    "quantity": quantity.extract,
    "number": number.extract,
    "uri": uri.extract,
}
# idx fields that get an index, per parameter type (others are stored but scanned).
INDEXED_SUFFIXES: dict[str, tuple[str, ...]] = {
    "token": ("",),
    "string": ("",),
    "date": ("@lo", "@hi", "@day"),  # not @eq: an eq search drives on @lo (types/date.build)
    "reference": ("",),
    "quantity": ("", "@u"),
    "number": ("",),
    "uri": ("",),
    "composite": ("",),
}
# Pairs of idx fields kept as compound fields ``a+b`` when a type has both parameters.
# Pairs of idx fields kept as compound fields ``a+b`` when a type has both parameters: only
# where each side alone is unselective (a patient's own resources are few; a code's are many).
COMPOUND_PAIRS: tuple[tuple[str, str], ...] = (  # in order of preference
    ("patient", "status"),
    ("subject", "status"),  # only on types without a patient parameter
    ("code", "date@day"),
    ("code", "date@lo"),
    ("code", "date@hi"),
)
MAX_CROSS = 64  # compound keys per resource, beyond which the pair is not stored


def indexable_params(resource_type: str) -> dict[str, SearchParam]:
    return dict(_indexable(resource_type))


@cache
def _indexable(resource_type: str) -> tuple[tuple[str, SearchParam], ...]:
    """Once per type (the registry is loaded once): ``extract_index`` runs on every write."""
    return tuple(
        (code, p)
        for code, p in search_params_for(resource_type).items()
        if SAFE_CODE.match(code) and p.expression and code != "_id"
    )


@cache
def compounds(resource_type: str) -> tuple[tuple[str, str], ...]:
    params = indexable_params(resource_type)
    out = []
    for a, b in COMPOUND_PAIRS:
        if a == "subject" and "patient" in params:
            continue
        if a in params and b.split("@")[0] in params:
            kind_b = params[b.split("@")[0]].type
            if "@" in b and kind_b != "date":
                continue
            if "@" not in b and kind_b not in ("token", "reference"):
                continue
            if params[a].type in ("token", "reference"):
                out.append((a, b))
    return tuple(out)


def compound_name(a: str, b: str) -> str:
    return f"{a}+{b}"


def extract_index(resource_type: str, resource: dict[str, Any]) -> dict[str, list[Any]]:
    """The ``idx`` sub-document for the current version of ``resource``."""
    out: dict[str, list[Any]] = {}
    for code, param in _indexable(resource_type):
        assert param.expression is not None
        nodes = evaluate(resource_type, param.expression, resource)
        if not nodes:
            continue
        if param.type == "composite":
            out.update(composite.extract_param(param, code, nodes))
        elif param.type in EXTRACTORS:
            out.update(EXTRACTORS[param.type](code, nodes))
    refs: list[str] = []
    for code in patient_compartment().get(resource_type, ()):
        refs += [r for r in out.get(code, []) if isinstance(r, str) and r.startswith("Patient/")]
    if resource_type == "Patient" and resource.get("id"):
        refs.append(f"Patient/{resource['id']}")
    if refs:
        out[COMPARTMENT] = list(dict.fromkeys(refs))
    for a, b in compounds(resource_type):
        va, vb = out.get(a), out.get(b)
        if va and vb and len(va) * len(vb) <= MAX_CROSS:
            out[compound_name(a, b)] = [f"{x}{SEP}{y}" for x in va for y in vb]
    return out


@cache
def indexed_fields(resource_type: str) -> tuple[str, ...]:
    """The idx fields written as ``ks`` keys (so served by the one index), most useful first."""
    fields: list[str] = [compound_name(a, b) for a, b in compounds(resource_type)]
    if resource_type in patient_compartment() or resource_type == "Patient":
        fields.append(COMPARTMENT)
    params = indexable_params(resource_type)

    def rank(item: tuple[str, SearchParam]) -> tuple[int, str]:
        code, p = item
        if code.startswith("combo-"):
            return (3, code)
        if p.type == "composite":
            return (2, code)
        return (1 if any(b in ("Resource", "DomainResource") for b in p.base) else 0, code)

    for code, p in sorted(params.items(), key=rank):
        fields += [code + s for s in INDEXED_SUFFIXES.get(p.type, ())]
    return tuple(fields)


@cache
def keyed_fields(resource_type: str) -> frozenset[str]:
    """Every field keys can drive (``key_layout``: stored, or served by stored keys)."""
    return frozenset(indexed_fields(resource_type))


# Observation's ``combo-X`` is ``X`` of the Observation or of one of its components, so its
# values are the union of ``X``'s and ``component-X``'s, and storing all three writes every
# value's keys twice (11 of an ordinary lab Observation's 52 keys). Which of them keeps its
# keys follows how ``X`` is searched: a token is searched by equality and its keys are windowed
# (``WINDOWED_TYPES``), so ``X`` and ``component-X`` keep theirs and ``combo-X`` is an ``$in``
# over both; quantities and composites are searched by ranges, which are no union of two key
# ranges, so ``combo-X`` keeps its keys and ``X`` and ``component-X`` scan them (a superset,
# their own condition filtering). Checked against the registry's expressions in
# tests/server/search/test_combo_keys.py.
COMBO = "combo-"
COMPONENT = "component-"


@cache
def key_layout(resource_type: str) -> keys.KeyLayout:
    """Which keyed fields are written as keys, and how the others drive (``keys.KeyLayout``)."""
    params = indexable_params(resource_type)
    unions: dict[str, tuple[str, ...]] = {}
    shared: dict[str, str] = {}
    for code, p in params.items():
        base = code.removeprefix(COMBO)
        part = COMPONENT + base
        if base == code or base not in params or part not in params:
            continue
        for suffix in INDEXED_SUFFIXES.get(p.type, ()):
            if p.type in WINDOWED_TYPES:
                unions[code + suffix] = (base + suffix, part + suffix)
            else:
                shared[base + suffix] = code + suffix
                shared[part + suffix] = code + suffix
    stored = keyed_fields(resource_type) - set(unions) - set(shared)
    return keys.KeyLayout(stored, unions, shared)


def stored_fields(resource_type: str) -> frozenset[str]:
    return key_layout(resource_type).stored


# Parameter types whose searches are equality on one key (token, reference, uri, a string's
# exact value) or a string prefix: the ones windows serve (``keys.Window``). Dates, numbers and
# quantities are searched by ranges over many values, which a bucket order cannot serve.
WINDOWED_TYPES = frozenset({"token", "string", "reference", "uri"})
# Parameters whose values identify one resource (or a few): a search on them never has the
# many matches windows are for, so their window keys would be write cost for nothing.
UNWINDOWED_CODES = frozenset({"identifier", "telecom", "phone", "email", "url", "_source"})


@cache
def windowed_fields(resource_type: str) -> frozenset[str]:
    """The keyed fields also written as ``kw`` window keys (``keys.window_keys``).

    Each costs a write one more index entry per value, so only what an equality search drives
    over many matches: no identifiers and addresses of one party (``UNWINDOWED_CODES``), no
    ``combo-*`` parameters (Observation's duplicates of ``code``/``value-*``, whose own
    fields are windowed), and compound fields only when both halves are windowed
    (``patient+status``, not ``code+date@lo``, which is searched by ranges).
    """
    codes = {
        code
        for code, p in indexable_params(resource_type).items()
        if p.type in WINDOWED_TYPES
        and code not in UNWINDOWED_CODES
        and not code.startswith("combo-")
    }
    fields = set(codes) | {
        compound_name(a, b) for a, b in compounds(resource_type) if {a, b} <= codes
    }
    if resource_type in patient_compartment() or resource_type == "Patient":
        fields.add(COMPARTMENT)
    return frozenset(fields) & stored_fields(resource_type)


def index_models(resource_type: str) -> list[IndexModel]:
    """The one ``ks`` index of every search value, its ``kw`` windows, plus (deleted, _id)."""
    return [
        IndexModel([("deleted", ASCENDING), ("_id", ASCENDING)], name="deleted_id"),
        keys.index_model(),
        keys.window_index_model(),
    ]


def search_keys(resource_type: str, idx: dict[str, list[Any]]) -> list[str]:
    """The ``ks`` list stored beside ``idx`` (``keys.keys_of`` on this type's stored fields)."""
    return keys.keys_of(stored_fields(resource_type), idx)


def window_keys(resource_type: str, ks: list[str], bucket: str) -> list[str]:
    """The ``kw`` list stored beside ``ks`` (``keys.window_keys`` on the windowed fields)."""
    return keys.window_keys(windowed_fields(resource_type), ks, bucket)


def is_indexed(resource_type: str, idx_field: str) -> bool:
    return idx_field in keyed_fields(resource_type)
