"""Who is acting on a case, as the action table (``resources.task.ACTIONS``) names parties.

Why derived per case and not from the token alone: "clinic" means *the requesting* clinic and
"assigned-expert" the expert who owns *this* Task; the same principal is another party on the
next case. The reference is what the case's Provenance records as the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auth.policy import Policy
from auth.principal import Principal
from server.context import SecurityContext

SERVER = "server"
TRUSTED = "trusted"


@dataclass(frozen=True)
class Actor:
    principal: Principal | None
    roles: frozenset[str]  # PractitionerRole ids the principal acts as (specialists)

    @property
    def role(self) -> str | None:
        """The bound party role, None for trusted integrations, admins and auth off."""
        p = self.principal
        if p is None or p.admin:
            return None
        return p.role

    @property
    def organization(self) -> str | None:
        return self.principal.organization if self.principal else None

    def reference(self) -> dict[str, Any]:
        """The Provenance agent: the user (fhirUser), else the bound organization, else the
        client."""
        p = self.principal
        if p is None:
            return {"display": "Consilium server"}
        if p.user and "/" in p.user:
            return {"reference": p.user}
        if p.practitioner_role:
            return {"reference": f"PractitionerRole/{p.practitioner_role}"}
        if p.organization:
            return {"reference": f"Organization/{p.organization}", "display": p.client_id}
        return {"display": f"client {p.client_id}"}

    def party(self, case_orgs: set[str], owners: set[str]) -> str:
        """This actor's party on a case owned by ``owners`` and submitted by ``case_orgs``."""
        role = self.role
        if role is None:
            return TRUSTED
        if role == "clinic":
            return "clinic" if self.organization in case_orgs else "other-clinic"
        if role == "specialist":
            return "assigned-expert" if self.roles & owners else "other-expert"
        return role  # insurer | coordinator


def actor_of(security: SecurityContext) -> Actor:
    p = security.principal
    if p is None:
        return Actor(None, frozenset())
    roles: set[str] = set()
    if p.role == "specialist":
        policy = security.policy
        if isinstance(policy, Policy):
            roles = set(policy.specialist_roles(p))
        else:
            if p.practitioner_role:
                roles.add(p.practitioner_role)
            if p.user and p.user.startswith("PractitionerRole/"):
                roles.add(p.user.split("/", 1)[1])
    return Actor(p, frozenset(roles))
