"""Test helpers for SMART: key pairs made at test time, client assertions, registration, tokens.

No key material is committed: every key here is generated when a test runs.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jose import jwk, jwt

ADMIN = "admin-secret-token-for-tests"
TOKEN_URL = "http://testserver/oauth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class KeyPair:
    def __init__(self, kind: str = "RSA", kid: str | None = None) -> None:
        self.kid = kid or uuid.uuid4().hex[:12]
        if kind == "RSA":
            key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS384"
        else:
            key = ec.generate_private_key(ec.SECP384R1())
            self.alg = "ES384"
        self.pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public = jwk.construct(self.pem, self.alg).public_key().to_dict()
        self.public_jwk = {**public, "kid": self.kid, "alg": self.alg}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def assertion(
        self,
        client_id: str,
        *,
        aud: str = TOKEN_URL,
        exp_in: int = 240,
        jti: str | None = None,
        alg: str | None = None,
        kid: str | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        body = {
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "exp": now + exp_in,
            "iat": now,
            "jti": jti or uuid.uuid4().hex,
            **(claims or {}),
        }
        return str(
            jwt.encode(body, self.pem, algorithm=alg or self.alg, headers={"kid": kid or self.kid})
        )


def register(client: TestClient, metadata: dict[str, Any], admin: str = ADMIN) -> dict[str, Any]:
    r = client.post("/oauth/register", json=metadata, headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def backend_client(
    client: TestClient,
    scope: str = "system/*.cruds",
    *,
    org: str | None = None,
    role: str | None = None,
    practitioner_role: str | None = None,
    key: KeyPair | None = None,
) -> tuple[str, KeyPair]:
    key = key or KeyPair()
    meta: dict[str, Any] = {
        "client_name": "backend",
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"],
        "jwks": key.jwks(),
        "scope": scope,
    }
    if org:
        meta["consilium"] = {
            "organization": org,
            "role": role,
            **({"practitioner_role": practitioner_role} if practitioner_role else {}),
        }
    return register(client, meta)["client_id"], key


def token_request(
    client: TestClient, client_id: str, key: KeyPair, scope: str | None = None, **kw: Any
) -> Any:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": key.assertion(client_id, **kw),
    }
    if scope is not None:
        form["scope"] = scope
    return client.post("/oauth/token", data=form)


def backend_token(client: TestClient, scope: str = "system/*.cruds", **binding: Any) -> str:
    """A token for a test that only needs one. The client signs with an EC key (ES384, which
    SMART servers must accept like RS384): generating an RSA key costs ~115 ms, an EC key
    under 1 ms, and a kit registers a dozen clients. RS384 flows are tested with
    ``backend_client`` and its default RSA key (tests/server/rest/test_oauth_backend.py)."""
    client_id, key = backend_client(client, scope, key=KeyPair("EC"), **binding)
    r = token_request(client, client_id, key)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- party test data
def _ref(target: str) -> dict[str, str]:
    return {"reference": target}


def party_resources() -> list[dict[str, Any]]:
    """Two clinics, two insurers, a specialist network with two experts, two cases."""
    out: list[dict[str, Any]] = []
    for oid in ("clinic-a", "clinic-b", "insurer-x", "insurer-y", "network-s"):
        out.append({"resourceType": "Organization", "id": oid, "name": oid})
    for pr in ("expert-1", "expert-2"):
        out.append(
            {
                "resourceType": "PractitionerRole",
                "id": pr,
                "organization": _ref("Organization/network-s"),
            }
        )
    for case, clinic, insurer, expert in (
        ("a", "clinic-a", "insurer-x", "expert-1"),
        ("b", "clinic-b", "insurer-y", "expert-2"),
    ):
        pid = f"pat-{case}"
        out += [
            {
                "resourceType": "Patient",
                "id": pid,
                "name": [{"family": f"Family{case.upper()}"}],
                "managingOrganization": _ref(f"Organization/{clinic}"),
            },
            {
                "resourceType": "Coverage",
                "id": f"cov-{case}",
                "status": "active",
                "beneficiary": _ref(f"Patient/{pid}"),
                "payor": [_ref(f"Organization/{insurer}")],
            },
            {
                "resourceType": "Condition",
                "id": f"cond-{case}",
                "subject": _ref(f"Patient/{pid}"),
                "code": {"text": "secret diagnosis"},
            },
            {
                "resourceType": "Observation",
                "id": f"obs-{case}",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "laboratory",
                            }
                        ]
                    }
                ],
                "code": {"text": "haemoglobin"},
                "subject": _ref(f"Patient/{pid}"),
            },
            {
                "resourceType": "Observation",
                "id": f"vital-{case}",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs",
                            }
                        ]
                    }
                ],
                "code": {"text": "heart rate"},
                "subject": _ref(f"Patient/{pid}"),
            },
            {
                "resourceType": "ServiceRequest",
                "id": f"sr-{case}",
                "status": "active",
                "intent": "order",
                "subject": _ref(f"Patient/{pid}"),
                "reasonCode": [{"text": "secret reason"}],
                "insurance": [_ref(f"Coverage/cov-{case}")],
            },
            {
                "resourceType": "DiagnosticReport",
                "id": f"dr-{case}",
                "status": "final",
                "code": {"text": "consult note"},
                "subject": _ref(f"Patient/{pid}"),
                "basedOn": [_ref(f"ServiceRequest/sr-{case}")],
                "issued": "2026-01-02T03:04:05Z",
                "performer": [_ref(f"PractitionerRole/{expert}")],
                "conclusion": "secret conclusion",
            },
            {
                "resourceType": "DiagnosticReport",
                "id": f"inv-{case}",
                "status": "final",
                "code": {"text": "biopsy"},
                "subject": _ref(f"Patient/{pid}"),
                "conclusion": "secret finding",
            },
            {
                "resourceType": "Task",
                "id": f"task-{case}",
                "status": "ready",
                "intent": "order",
                "focus": _ref(f"ServiceRequest/sr-{case}"),
                "for": _ref(f"Patient/{pid}"),
                "owner": _ref(f"PractitionerRole/{expert}"),
            },
        ]
    return out


def load_parties(client: TestClient, admin: str = ADMIN) -> None:
    for r in party_resources():
        resp = client.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers=bearer(admin))
        assert resp.status_code in (200, 201), (r["id"], resp.text)
