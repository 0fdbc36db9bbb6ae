"""The typed search request that ``params.parse`` produces and the later stages consume."""

from __future__ import annotations

from dataclasses import dataclass, field

from resources.registry import SearchParam
from server.errors import Issue


@dataclass(frozen=True)
class Step:
    """One hop from the clause's base type to the type its parameter lives on.

    Forward (chain ``subject:Patient.name``): ``code`` is a reference parameter of the current
    type and ``target`` the type it points to (None = every target of the parameter).
    Reverse (``_has:Observation:patient:code``): ``reverse`` is True, ``target`` is the type
    holding the reference and ``code`` its reference parameter pointing back.
    """

    code: str
    target: str | None
    reverse: bool = False


@dataclass(frozen=True)
class Clause:
    """One parameter occurrence: its values are OR'd; clauses are AND'd."""

    name: str  # as written by the client (for messages)
    code: str
    param: SearchParam | None  # None for _id (matched on the document _id)
    modifier: str | None
    values: tuple[str, ...]
    path: tuple[Step, ...] = ()
    on_type: str = ""  # the type the final parameter belongs to


@dataclass(frozen=True)
class Include:
    source: str  # resource type holding the reference, or "*"
    code: str  # reference parameter code, or "*"
    target: str | None
    iterate: bool = False
    reverse: bool = False


@dataclass(frozen=True)
class SortKey:
    code: str
    descending: bool


@dataclass
class SearchRequest:
    resource_type: str  # a type, or "" for a system search (see ``types``)
    clauses: list[Clause] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int | None = None
    total: str | None = None  # none | estimate | accurate
    summary: str | None = None  # true | text | data | count | false
    elements: list[str] | None = None
    page: str | None = None  # opaque paging token
    types: list[str] = field(default_factory=list)  # system search _type
    issues: list[Issue] = field(default_factory=list)  # ignored parameters (warnings)
    echo: list[tuple[str, str]] = field(default_factory=list)  # params kept, for links
