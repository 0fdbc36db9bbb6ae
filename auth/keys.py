"""The server's signing keys, their JWKS (RFC 7517) and rotation by ``kid`` (RFC 7515 §4.1.4).

Keys live as PEM files in a directory outside the repository (``Settings.keys_dir``), generated on
first start. ``current`` names the active key; older keys stay published in the JWKS so tokens
signed before a rotation verify until they expire. Private keys are written 0600.

Why RS384: SMART Backend Services requires RS384 or ES384 support; RS384 for our own tokens keeps
one key type to reason about.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk

SIGNING_ALG = "RS384"
_CURRENT = "current"
RELOAD_SECONDS = 5.0  # how soon other processes notice ``consilium keys rotate``


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    public_jwk: dict[str, Any]


def _generate_rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_jwk(private_pem: str, kid: str) -> dict[str, Any]:
    public = jwk.construct(private_pem, SIGNING_ALG).public_key().to_dict()
    out: dict[str, Any] = {k: v for k, v in public.items() if k in ("kty", "n", "e")}
    out.update({"kid": kid, "alg": SIGNING_ALG, "use": "sig"})
    return out


class KeyStore:
    """Loads (or creates) the key directory; thread-safe rotation."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._current: str | None = None
        self._checked = time.monotonic()
        self._load()

    def _load(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        found: dict[str, SigningKey] = {}
        for path in sorted(self.directory.glob("*.pem")):
            kid = path.stem
            known = self._keys.get(kid)
            if known is not None:
                found[kid] = known
                continue
            pem = path.read_text(encoding="ascii")
            found[kid] = SigningKey(kid, pem, _public_jwk(pem, kid))
        self._keys = found
        marker = self.directory / _CURRENT
        if marker.exists():
            kid = marker.read_text(encoding="ascii").strip()
            if kid in self._keys:
                self._current = kid
        if self._current is None or self._current not in self._keys:
            self._current = None
            self.rotate()

    def _maybe_reload(self, force: bool = False) -> None:
        """Pick up keys rotated or retired by another process (rate-limited)."""
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_SECONDS:
            return
        with self._lock:
            if not force and now - self._checked < RELOAD_SECONDS:
                return
            self._checked = now
        self._load()

    def rotate(self) -> SigningKey:
        """Create a new key and make it current; old keys stay in the JWKS for verification."""
        with self._lock:
            kid = uuid.uuid4().hex[:16]
            pem = _generate_rsa_pem()
            path = self.directory / f"{kid}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            tmp = self.directory / f"{_CURRENT}.tmp"
            tmp.write_text(kid, encoding="ascii")
            tmp.replace(self.directory / _CURRENT)
            text = pem.decode("ascii")
            key = SigningKey(kid, text, _public_jwk(text, kid))
            self._keys[kid] = key
            self._current = kid
            return key

    def retire(self, kid: str) -> None:
        """Drop an old key (after every token it signed has expired)."""
        with self._lock:
            if kid == self._current:
                raise ValueError("cannot retire the current key; rotate first")
            self._keys.pop(kid, None)
            (self.directory / f"{kid}.pem").unlink(missing_ok=True)

    @property
    def current(self) -> SigningKey:
        self._maybe_reload()
        assert self._current is not None
        return self._keys[self._current]

    def get(self, kid: str) -> SigningKey | None:
        key = self._keys.get(kid)
        if key is None:
            self._maybe_reload()  # maybe rotated elsewhere; unknown kids cannot force a reload
            key = self._keys.get(kid)
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self._keys.values()]}
