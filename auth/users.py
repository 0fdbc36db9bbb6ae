"""End users who log in on the authorization page (SMART App Launch "fhirUser").

Passwords are stored as salted scrypt hashes (stdlib ``hashlib.scrypt``, RFC 7914) and compared
in constant time. A user has the same optional Organization/role binding as clients (any of
``auth.principal.ROLES``: clinic, specialist, insurer, coordinator) and usually a ``fhir_user``
(Practitioner/… or PractitionerRole/…). ``fhir_user`` is optional because not every party's
staff is a FHIR resource: an insurer's case officer or a coordinator of the second-opinion
service has no Practitioner in the network directory, and a made-up reference would be a
dangling ``fhirUser`` claim. Such a user's token carries no ``fhirUser`` (SMART allows that);
the party binding alone decides what they see.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

from mongoengine import Document, StringField

from auth.principal import ROLES

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


class UserBase(Document):  # type: ignore[misc]
    meta: dict[str, Any] = {"abstract": True}

    username = StringField(primary_key=True)
    password_hash = StringField(required=True)
    display_name = StringField(default="")
    fhir_user = StringField(null=True)
    organization = StringField(null=True)
    role = StringField(null=True, choices=(*ROLES, None))
    practitioner_role = StringField(null=True)

    def binding(self) -> dict[str, Any]:
        return {"org": self.organization, "role": self.role, "prole": self.practitioner_role}
