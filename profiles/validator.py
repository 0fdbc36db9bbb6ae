"""Check a resource (a plain dict) against one of our constraint profiles.

The profile's differential is the table that drives the check; nothing here knows about second
opinions. Supported, because our IG uses it: min/max cardinality (per parent element),
``fixed[x]`` (exact), ``pattern[x]`` (the value must contain the pattern; a pattern Coding list
matches when every pattern coding is among the value's codings), bindings (required: error,
extensible: warning; undecidable memberships such as SNOMED descendants: warning), Reference
target types, and open slicing by ``value``/``pattern`` discriminators (a slice's members are
the items that match the slice's fixed/pattern/required binding at the discriminator path;
``closed`` slicing rules are not enforced — our IG has none).

Results are ``ValidationIssue``s with a FHIRPath expression pointing at the element, so the
server can put them straight into an OperationOutcome. Pure: no I/O, no server imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from profiles.conformance import lookup, profile_type
from profiles.terminology import Membership, implied_systems, in_value_set

Node = tuple[Any, str]  # (value, FHIRPath of the value)


@dataclass(frozen=True)
class ValidationIssue:
    severity: str  # error | warning
    code: str  # OperationOutcome issue type: required | structure | value | code-invalid
    diagnostics: str
    expression: str

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


class UnknownProfile(LookupError):
    """The canonical URL is not one of our StructureDefinitions."""


# ------------------------------------------------------------------------------- navigation
def _children(node: Node, name: str) -> list[Node]:
    value, path = node
    if not isinstance(value, dict):
        return []
    if name.endswith("[x]"):
        prefix = name[:-3]
        keys = [
            k
            for k in value
            if k.startswith(prefix) and len(k) > len(prefix) and k[len(prefix)].isupper()
        ]
    else:
        keys = [name] if name in value else []
    out: list[Node] = []
    for key in keys:
        v = value[key]
        if isinstance(v, list):
            out.extend((item, f"{path}.{key}[{i}]") for i, item in enumerate(v))
        else:
            out.append((v, f"{path}.{key}"))
    return out


def _descend(node: Node, dotted: str) -> list[Node]:
    nodes = [node]
    for part in dotted.split("."):
        nodes = [c for n in nodes for c in _children(n, part)]
    return nodes


def matches_pattern(value: Any, pattern: Any) -> bool:
    """FHIR pattern semantics: every element of the pattern is present in the value."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and matches_pattern(value[k], v) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(matches_pattern(i, p) for i in items) for p in pattern)
    return bool(value == pattern)


def _constraint(element: dict[str, Any], prefix: str) -> tuple[str, Any] | None:
    for key, v in element.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            return key, v
    return None


def _codings(value: Any) -> list[tuple[str | None, str | None]] | None:
    """(system, code) pairs of a CodeableConcept or Coding; None if ``value`` is neither."""
    if isinstance(value, dict) and "coding" in value:
        return [(c.get("system"), c.get("code")) for c in value["coding"] if isinstance(c, dict)]
    if isinstance(value, dict) and ("code" in value or "system" in value):
        return [(value.get("system"), value.get("code"))]
    if isinstance(value, dict):
        return []  # e.g. a CodeableConcept with text only
    return None


def binding_membership(value: Any, vs_url: str) -> Membership:
    """True if any coding (or the bare code) is in the value set; None if undecidable."""
    pairs = _codings(value)
    if pairs is None:
        if not isinstance(value, str):
            return False
        pairs = [(s, value) for s in implied_systems(vs_url)]
    results = [in_value_set(vs_url, s, c) for s, c in pairs]
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def reference_type(reference: str) -> str | None:
    """``Patient/1``, ``…/fhir/Patient/1/_history/2`` → ``Patient``; contained/urn refs → None."""
    if reference.startswith(("#", "urn:")):
        return None
    parts = reference.split("/")
    if "_history" in parts:
        i = parts.index("_history")
        return parts[i - 2] if i >= 2 else None
    return parts[-2] if len(parts) >= 2 else None


def _target_types(element: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for t in element.get("type", []):
        for url in t.get("targetProfile", []):
            own = profile_type(url)
            out.add(own if own else url.rsplit("/", 1)[-1])
    return out


# ---------------------------------------------------------------------------------- checker
class _Checker:
    def __init__(self, resource: dict[str, Any], sd: dict[str, Any]) -> None:
        self.resource = resource
        self.root = sd["type"]
        self.elements: dict[str, dict[str, Any]] = {
            e["id"]: e for e in sd.get("differential", {}).get("element", []) if e.get("id")
        }
        self.issues: list[ValidationIssue] = []
        self._memo: dict[str, list[Node]] = {}

    def add(self, severity: str, code: str, diagnostics: str, expression: str) -> None:
        self.issues.append(ValidationIssue(severity, code, diagnostics, expression))

    # Slice membership: the slice's constraints at each discriminator path.
    def in_slice(self, item: Node, base_id: str, slice_id: str) -> bool:
        slicing = self.elements.get(base_id, {}).get("slicing", {})
        for disc in slicing.get("discriminator", []):
            if disc.get("type") not in ("value", "pattern"):
                continue  # type/profile/exists discriminators: not used by our IG
            dpath = disc.get("path", "$this")
            target_id = slice_id if dpath == "$this" else f"{slice_id}.{dpath}"
            element = self.elements.get(target_id)
            values = [item] if dpath == "$this" else _descend(item, dpath)
            if (
                element is None
                or not values
                or not any(self._defines(element, v[0]) for v in values)
            ):
                return False
        return True

    def _defines(self, element: dict[str, Any], value: Any) -> bool:
        fixed = _constraint(element, "fixed")
        if fixed is not None:
            return bool(value == fixed[1])
        pattern = _constraint(element, "pattern")
        if pattern is not None:
            return matches_pattern(value, pattern[1])
        binding = element.get("binding", {})
        if binding.get("strength") == "required" and binding.get("valueSet"):
            return binding_membership(value, binding["valueSet"]) is True
        return False

    def nodes(self, eid: str) -> list[Node]:
        """Every value the element id denotes, slices filtered, with their paths."""
        if eid == self.root:
            return [(self.resource, self.root)]
        if eid in self._memo:
            return self._memo[eid]
        parent_id, _, last = eid.rpartition(".")
        name, _, slice_name = last.partition(":")
        out: list[Node] = []
        for parent in self.nodes(parent_id):
            kids = _children(parent, name)
            if slice_name:
                base_id = f"{parent_id}.{name}"
                kids = [k for k in kids if self.in_slice(k, base_id, eid)]
            out.extend(kids)
        self._memo[eid] = out
        return out

    def check(self) -> list[ValidationIssue]:
        for eid, element in self.elements.items():
            if eid == self.root:
                continue
            self.check_element(eid, element)
        return self.issues

    def check_element(self, eid: str, element: dict[str, Any]) -> None:
        parent_id, _, last = eid.rpartition(".")
        name, _, slice_name = last.partition(":")
        label = f"{name}:{slice_name}" if slice_name else name
        shown = name[:-3] if name.endswith("[x]") else name
        for parent in self.nodes(parent_id):
            kids = _children(parent, name)
            if slice_name:
                kids = [k for k in kids if self.in_slice(k, f"{parent_id}.{name}", eid)]
            where = f"{parent[1]}.{shown}"
            lo, hi = element.get("min", 0), element.get("max", "*")
            if len(kids) < lo:
                self.add(
                    "error",
                    "required",
                    f"{label}: minimum cardinality {lo}, found {len(kids)}" + self._hint(element),
                    where,
                )
            if hi != "*" and len(kids) > int(hi):
                self.add(
                    "error",
                    "structure",
                    f"{label}: maximum cardinality {hi}, found {len(kids)}",
                    where,
                )
            for kid in kids:
                self.check_value(label, element, kid)

    @staticmethod
    def _hint(element: dict[str, Any]) -> str:
        short = element.get("short")
        return f" ({short})" if isinstance(short, str) else ""

    def check_value(self, label: str, element: dict[str, Any], node: Node) -> None:
        value, path = node
        fixed = _constraint(element, "fixed")
        if fixed is not None and value != fixed[1]:
            self.add("error", "value", f"{label} must be {fixed[1]!r}, found {value!r}", path)
        pattern = _constraint(element, "pattern")
        if pattern is not None and not matches_pattern(value, pattern[1]):
            self.add("error", "value", f"{label} must match the pattern {pattern[1]}", path)
        binding = element.get("binding", {})
        vs_url = binding.get("valueSet")
        if isinstance(vs_url, str):
            self.check_binding(label, binding.get("strength", ""), vs_url, value, path)
        targets = _target_types(element)
        if targets and isinstance(value, dict) and isinstance(value.get("reference"), str):
            rtype = reference_type(value["reference"])
            if rtype is not None and rtype not in targets:
                self.add(
                    "error",
                    "value",
                    f"{label} must reference {' | '.join(sorted(targets))}, found {rtype}",
                    path,
                )

    def check_binding(self, label: str, strength: str, vs_url: str, value: Any, path: str) -> None:
        if strength not in ("required", "extensible"):
            return
        got = binding_membership(value, vs_url)
        if got is True:
            return
        if strength == "required" and got is False:
            self.add(
                "error",
                "code-invalid",
                f"{label}: no code from the required value set {vs_url}",
                path,
            )
        elif strength == "required":
            self.add(
                "warning",
                "code-invalid",
                f"{label}: membership in {vs_url} could not be verified",
                path,
            )
        else:
            self.add(
                "warning",
                "code-invalid",
                f"{label}: no code from the extensible value set {vs_url}",
                path,
            )


def validate(resource: dict[str, Any], profile_url: str) -> list[ValidationIssue]:
    """Every issue of ``resource`` against the profile; errors first is not guaranteed."""
    sd = lookup(profile_url, "StructureDefinition")
    if sd is None:
        raise UnknownProfile(profile_url)
    rtype = resource.get("resourceType")
    if rtype != sd["type"]:
        return [
            ValidationIssue(
                "error",
                "structure",
                f"profile {profile_url} constrains {sd['type']}, not {rtype}",
                str(rtype),
            )
        ]
    return _Checker(resource, sd).check()


def errors(issues: list[ValidationIssue]) -> list[ValidationIssue]:
    return [i for i in issues if i.is_error]


def conforms(resource: dict[str, Any], profile_url: str) -> bool:
    return not errors(validate(resource, profile_url))
