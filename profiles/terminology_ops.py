"""``ValueSet/$validate-code``, ``CodeSystem/$lookup`` and ``ConceptMap/$translate`` over the
guide's definitions, as pure functions returning ``Parameters`` (see ``expansion`` for the
shared pieces and why there is no terminology server behind them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from profiles.conformance import CM_ICD10, strip_version
from profiles.expansion import (
    Entry,
    Resolver,
    Resource,
    TerminologyError,
    entry_of,
    resolver,
    snomed_display,
)
from profiles.terminology import (
    ICD10_SYSTEMS,
    SCT,
    Membership,
    icd10_match,
    snomed_hierarchy,
    value_set_contains,
    walk_concepts,
)
from profiles.terminology import (
    concept as concept_of,
)

_NO_MATCH = ("unmatched", "disjoint")

__all__ = ["TerminologyError", "lookup_code", "parameters", "translate", "validate_code"]


# --------------------------------------------------------------------------- parameters
def _param(name: str, key: str, value: Any) -> Resource:
    return {"name": name, key: value}


def parameters(*params: Resource | None) -> Resource:
    return {"resourceType": "Parameters", "parameter": [p for p in params if p is not None]}


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


# --------------------------------------------------------------------------- $validate-code
def _known_display(vs: Resource, system: str, code: str, resolve: Resolver) -> Entry | None:
    """The concept as the value set or its code system states it (display, designations)."""
    for inc in vs.get("compose", {}).get("include", []):
        if inc.get("system") == system:
            for c in inc.get("concept", []):
                if c.get("code") == code and c.get("display"):
                    return Entry(
                        system, code, c["display"], designation=tuple(c.get("designation", []))
                    )
    cs = resolve(system, "CodeSystem")
    if cs is not None:
        c = next(
            (x for x, _ in walk_concepts(cs.get("concept", [])) if x.get("code") == code), None
        )
        return entry_of(cs, c) if c is not None else None
    if system == SCT and snomed_display(code):
        return Entry(system, code, snomed_display(code))
    return None


def _one_coding(
    vs: Resource, system: str | None, code: str, display: str | None, resolve: Resolver
) -> tuple[Membership, str | None, str | None]:
    """(membership, message, the display to recommend) of one coding."""
    url = vs.get("url", "the value set")
    if system is None:
        systems = list(
            dict.fromkeys(
                i["system"] for i in vs.get("compose", {}).get("include", []) if i.get("system")
            )
        )
        if len(systems) != 1:
            return False, f"code {code!r} needs a system: {url} draws on several", None
        system = systems[0]
    cs = resolve(system, "CodeSystem")
    complete = cs is not None and cs.get("content") in (None, "complete")
    if complete and not any(c.get("code") == code for c, _ in walk_concepts(cs.get("concept", []))):  # type: ignore[union-attr]
        return False, f"unknown code {code!r} in the code system {system}", None
    got = value_set_contains(vs, system, code)
    known = _known_display(vs, system, code, resolve)
    shown = known.display if known else None
    if got is False:
        return False, f"the code {system}|{code} is not in the value set {url}", shown
    if got is None:
        return (
            None,
            f"membership of {system}|{code} in {url} cannot be decided here: the SNOMED CT "
            "concept is outside the hierarchy subset the guide ships (ask a terminology server)",
            shown,
        )
    if display is not None and known is not None and known.display:
        allowed = {_norm(known.display)} | {
            _norm(d["value"]) for d in known.designation if isinstance(d.get("value"), str)
        }
        if _norm(display) not in allowed:
            return (
                True,
                f"warning: the display {display!r} is not the display of {system}|{code}; "
                f"it is {known.display!r}",
                shown,
            )
    return True, None, shown


def validate_code(
    vs: Resource,
    *,
    code: str | None = None,
    system: str | None = None,
    display: str | None = None,
    coding: Resource | None = None,
    codeable_concept: Resource | None = None,
    resolve: Resolver | None = None,
) -> Resource:
    """``ValueSet/$validate-code`` → Parameters ``result``, ``message``, ``display``.

    R4: the result is about membership; ``message`` with ``result`` true carries hints and
    warnings, so a wrong display is ``result`` true plus a warning and the right ``display``.
    Undecidable SNOMED membership is ``result`` false with a message saying so (the spec's
    result is boolean; claiming membership we cannot show would be worse).
    """
    res = resolver(resolve)
    given = sum(x is not None for x in (code, coding, codeable_concept))
    if given != 1:
        raise TerminologyError(
            400, "invalid", "give exactly one of code (+system), coding or codeableConcept"
        )
    if codeable_concept is not None:
        pairs = [
            (c.get("system"), c.get("code"), c.get("display"))
            for c in codeable_concept.get("coding", [])
            if isinstance(c, dict)
        ]
    elif coding is not None:
        pairs = [(coding.get("system"), coding.get("code"), coding.get("display"))]
    else:
        pairs = [(system, code, display)]
    pairs = [p for p in pairs if isinstance(p[1], str) and p[1]]
    if not pairs:
        raise TerminologyError(400, "invalid", "no code to validate")
    results = [_one_coding(vs, s, str(c), d, res) for s, c, d in pairs]
    hit = next((r for r in results if r[0] is True), None)
    if hit is not None:
        _, message, shown = hit
        return parameters(
            _param("result", "valueBoolean", True),
            _param("message", "valueString", message) if message else None,
            _param("display", "valueString", shown) if shown else None,
        )
    messages = "; ".join(m for _, m, _ in results if m)
    shown = next((s for _, _, s in results if s), None)
    return parameters(
        _param("result", "valueBoolean", False),
        _param("message", "valueString", messages),
        _param("display", "valueString", shown) if shown else None,
    )


# ----------------------------------------------------------------------------------- $lookup
def _designation_param(d: Resource) -> Resource:
    parts = []
    if d.get("language"):
        parts.append(_param("language", "valueCode", d["language"]))
    if d.get("use"):
        parts.append(_param("use", "valueCoding", d["use"]))
    parts.append(_param("value", "valueString", d.get("value", "")))
    return {"name": "designation", "part": parts}


def _property_param(code: str, key: str, value: Any) -> Resource:
    return {
        "name": "property",
        "part": [_param("code", "valueCode", code), {"name": "value", key: value}],
    }


def lookup_code(
    cs: Resource | None, system: str, code: str, *, properties: Iterable[str] = ()
) -> Resource:
    """``CodeSystem/$lookup`` → Parameters ``name``, ``version``, ``display``, ``designation``,
    ``property`` (the concept's own properties, and ``parent``/``child`` from the hierarchy).

    ``cs`` None: SNOMED CT codes the guide states (display, and ``parent`` within the shipped
    subset); anything else is unknown (404). ``properties`` limits the properties returned."""
    wanted = set(properties)

    def keep(name: str) -> bool:
        return not wanted or name in wanted

    if cs is None:
        if system != SCT or snomed_display(code) is None:
            raise TerminologyError(404, "not-found", f"unknown code system or code {system}|{code}")
        out = parameters(
            _param("name", "valueString", "SNOMED CT (the subset the Consilium guide states)"),
            _param("display", "valueString", snomed_display(code)),
        )
        if keep("parent"):
            for p in snomed_hierarchy().get(code, ()):
                out["parameter"].append(_property_param("parent", "valueCode", p))
        if keep("child"):
            for c, parents in sorted(snomed_hierarchy().items()):
                if code in parents:
                    out["parameter"].append(_property_param("child", "valueCode", c))
        return out
    found = next(
        ((c, ps) for c, ps in walk_concepts(cs.get("concept", [])) if c.get("code") == code), None
    )
    if found is None:
        raise TerminologyError(404, "not-found", f"unknown code {code!r} in {cs.get('url')}")
    concept, parents = found
    out = parameters(
        _param("name", "valueString", cs.get("name") or cs.get("title") or cs["url"]),
        _param("version", "valueString", cs["version"]) if cs.get("version") else None,
        _param("display", "valueString", concept["display"]) if concept.get("display") else None,
    )
    params = out["parameter"]
    if concept.get("definition"):
        params.append(_param("definition", "valueString", concept["definition"]))
    params.extend(_designation_param(d) for d in concept.get("designation", []))
    for p in concept.get("property", []):
        value = next(((k, v) for k, v in p.items() if k.startswith("value")), None)
        if value is not None and keep(p.get("code", "")):
            params.append(_property_param(p["code"], *value))
    if keep("parent") and parents:
        params.append(_property_param("parent", "valueCode", parents[-1]))
    if keep("child"):
        for child in concept.get("concept", []):
            params.append(_property_param("child", "valueCode", child["code"]))
    return out


# -------------------------------------------------------------------------------- $translate
def _match(equivalence: str, system: str | None, target: Resource, source: str) -> Resource:
    parts = [_param("equivalence", "valueCode", equivalence)]
    if target.get("code"):
        concept: Resource = {"system": system} if system else {}
        concept["code"] = target["code"]
        display = target.get("display")
        if not display and system:
            own = concept_of(system, target["code"])
            display = own.get("display") if own else None
        if display:
            concept["display"] = display
        parts.append(_param("concept", "valueCoding", concept))
    parts.append(_param("source", "valueUri", source))
    return {"name": "match", "part": parts}


def _through_category(equivalence: str) -> str:
    """A subcode matched through its category: what the target is to the subcode. A target
    equal to (or wider than) the category is wider than the subcode; one narrower than the
    category may or may not cover it (inexact)."""
    if equivalence in ("equivalent", "equal", "wider", "subsumes"):
        return "wider"
    if equivalence in _NO_MATCH:
        return equivalence
    return "inexact"


def _group_matches(
    cm: Resource, group: Resource, code: str
) -> list[tuple[str, Resource, str | None]]:
    """(equivalence, target, via element code) of one group for ``code``.

    ICD-10 groups of the covered-condition map follow ``terminology.icd10_match`` (a mapped
    category covers its subcodes), every other group matches codes exactly."""
    system = group.get("source")
    if strip_version(cm.get("url", "")) == CM_ICD10 and system in ICD10_SYSTEMS:
        got = icd10_match(str(system), code)
        if got is None:
            return []
        element, target = got
        equivalence = str(target.get("equivalence", "equivalent"))
        if element != code.strip().upper():
            equivalence = _through_category(equivalence)
        return [(equivalence, target, element)]
    out: list[tuple[str, Resource, str | None]] = []
    for el in group.get("element", []):
        if el.get("code") == code:
            for t in el.get("target", []):
                if t.get("code") or t.get("equivalence") in _NO_MATCH:
                    out.append((t.get("equivalence", "equivalent"), t, None))
    return out


def translate(
    maps: Iterable[Resource],
    *,
    system: str,
    code: str,
    target_system: str | None = None,
    target: str | None = None,
) -> Resource:
    """``ConceptMap/$translate`` over ``maps`` → Parameters ``result``, ``message``, ``match``.

    ``result`` is true when some match is not ``unmatched``/``disjoint``. ``target_system``
    keeps the groups with that target; ``target`` (a value set) keeps the maps whose
    ``targetUri``/``targetCanonical`` it is."""
    matches: list[Resource] = []
    mapped = False
    vias: list[str] = []
    for cm in maps:
        scope = cm.get("targetUri") or cm.get("targetCanonical")
        if target is not None and scope is not None and strip_version(scope) != target:
            continue
        for group in cm.get("group", []):
            if group.get("source") != system:
                continue
            if target_system is not None and group.get("target") != target_system:
                continue
            for equivalence, t, via in _group_matches(cm, group, code):
                matches.append(_match(equivalence, group.get("target"), t, cm.get("url", "")))
                mapped = mapped or equivalence not in _NO_MATCH
                if via and via != code:
                    vias.append(via)
    if mapped:
        message = f"{system}|{code} mapped" + (
            f" through its category {', '.join(dict.fromkeys(vias))}" if vias else ""
        )
    elif matches:
        message = f"{system}|{code} has no equivalent in the target (unmatched)"
    else:
        message = f"no mapping for {system}|{code}"
    return parameters(
        _param("result", "valueBoolean", mapped),
        _param("message", "valueString", message),
        *matches,
    )
