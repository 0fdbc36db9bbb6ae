"""``consilium client add`` / ``user add`` / ``keys rotate`` / ``token``: the CLI face of auth.

Same validation as ``POST /oauth/register`` (RFC 7591 metadata, ``auth.clients``), written
straight to the database the server uses, so an operator can bootstrap clients without the
admin token.

``consilium token --user NAME`` prints an access token for a demo user of a *development* data
dir, so every README example works with authorization on without a browser sign-in. Why it is
safe enough: it only runs where ``serve --seed`` wrote ``demo-credentials.json`` and only for the
demo users named there, and it signs with that data dir's own keys, which anyone able to run it
could read anyway. It needs no database (the users are the seed's definitions), so it works while
``make run`` holds the embedded one. The token is what the token endpoint would issue for that
user's binding (``auth.tokens.issue_access_token``, issuer = the FHIR base the server derives
for a request to ``http://HOST:PORT``, or ``CONSILIUM_BASE_URL``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auth.errors import OAuthError
from auth.principal import ROLES
from auth.scopes import is_valid_scope
from auth.store import AuthStore

CLI_CLIENT_ID = "consilium-cli"
MAX_DEV_TOKEN_LIFETIME = 24 * 3600
# What a demo user's app would typically be granted: every party reads and writes through the
# party rules (they, not the scope, keep a party to its own part), insurers read and keep their
# Coverage current.
DEFAULT_SCOPES: dict[str, tuple[str, ...]] = {
    "clinic": ("user/*.cruds",),
    "specialist": ("user/*.cruds",),
    "coordinator": ("user/*.cruds",),
    "insurer": ("user/*.rs", "user/Coverage.cruds"),
}
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # listening on all: reached on loopback

# A demo user as the seed defines it: username, fhirUser, organization, role, practitioner role.
DemoUser = tuple[str, str | None, str, str, str | None]


def _metadata(args: argparse.Namespace) -> dict[str, Any]:
    meta: dict[str, Any] = {"client_name": args.name, "scope": " ".join(args.scope or [])}
    if args.jwks:
        jwks = json.loads(Path(args.jwks).read_text(encoding="utf-8"))
        meta["token_endpoint_auth_method"] = "private_key_jwt"  # noqa: S105
        meta["jwks"] = jwks if "keys" in jwks else {"keys": [jwks]}
        meta["grant_types"] = args.grant or ["client_credentials"]
    else:
        meta["token_endpoint_auth_method"] = "none"  # noqa: S105
        meta["grant_types"] = args.grant or ["authorization_code", "refresh_token"]
    if args.redirect_uri:
        meta["redirect_uris"] = args.redirect_uri
    if args.org or args.role:
        meta["consilium"] = {
            "organization": args.org,
            "role": args.role,
            "practitioner_role": args.practitioner_role,
        }
    return meta


def cmd_client_add(args: argparse.Namespace, settings: Any, uri: str) -> int:
    store = AuthStore(uri, settings.db_name)
    try:
        client = store.register_client(_metadata(args))
    except OAuthError as exc:
        print(f"error: {exc.error}: {exc.description}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps(client.to_metadata(), indent=2))
    return 0


def cmd_user_add(args: argparse.Namespace, settings: Any, uri: str) -> int:
    password = args.password or getpass.getpass(f"password for {args.username}: ")
    store = AuthStore(uri, settings.db_name)
    try:
        store.add_user(
            args.username,
            password,
            args.fhir_user,
            organization=args.org,
            role=args.role,
            practitioner_role=args.practitioner_role,
        )
    finally:
        store.close()
    print(f"user {args.username} saved ({args.fhir_user or 'no fhirUser'})")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """New signing key; running servers pick it up within seconds (old keys keep verifying)."""
    from auth.keys import KeyStore
    from server.config import Settings

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    settings = Settings(**overrides)
    key = KeyStore(settings.keys_dir).rotate()
    print(f"new signing key {key.kid} in {settings.keys_dir}")
    return 0


def fhir_issuer(settings: Any) -> str:
    """The token ``iss`` the running server expects (``AuthRuntime.issuer``): its FHIR base as a
    client on this machine reaches it, i.e. ``CONSILIUM_BASE_URL`` or ``http://HOST:PORT``."""
    if settings.base_url:
        return f"{str(settings.base_url).rstrip('/')}/fhir"
    host = "127.0.0.1" if settings.host in _WILDCARD_HOSTS else str(settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/fhir"


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_token(
    args: argparse.Namespace,
    settings: Any,
    credentials: dict[str, Any] | None,
    demo_users: Mapping[str, DemoUser],
) -> int:
    """Print a demo user's access token on stdout (its lifetime on stderr); no database."""
    from auth.keys import KeyStore
    from auth.tokens import issue_access_token

    if credentials is None:
        return _fail(
            f"{settings.data_dir} is not a development data dir (no demo-credentials.json); "
            "`consilium serve --seed` creates one. Production tokens come from /oauth/token."
        )
    user = demo_users.get(args.user)
    if user is None or args.user not in (credentials.get("users") or {}):
        known = sorted(set(demo_users) & set(credentials.get("users") or {}))
        return _fail(
            f"{args.user!r} is not a demo user of this data dir; known: {', '.join(known)}"
        )
    _, fhir_user, org, role, prole = user
    scopes = list(args.scope or DEFAULT_SCOPES.get(role, ("user/*.rs",)))
    bad = [s for s in scopes if not is_valid_scope(s)]
    if bad:
        return _fail(f"invalid scope {bad[0]!r}")
    lifetime = settings.access_token_lifetime_seconds if args.lifetime is None else args.lifetime
    if not 1 <= lifetime <= MAX_DEV_TOKEN_LIFETIME:
        return _fail(f"--lifetime must be between 1 and {MAX_DEV_TOKEN_LIFETIME} seconds")
    issuer = fhir_issuer(settings)
    token, claims = issue_access_token(
        KeyStore(settings.keys_dir),
        issuer=issuer,
        client_id=CLI_CLIENT_ID,
        scopes=scopes,
        lifetime=lifetime,
        subject=args.user,
        context={"fhirUser": fhir_user},
        binding={"org": org, "role": role, "prole": prole},
    )
    expires = datetime.fromtimestamp(claims["exp"], UTC).strftime("%H:%M:%S UTC")
    print(token)
    print(
        f"{args.user} ({role} {org}), scope {' '.join(scopes)}, for {issuer}: "
        f"expires in {lifetime} s (at {expires})",
        file=sys.stderr,
    )
    return 0


def add_token_parser(sub: Any, common: Any, func: Any) -> None:
    """``consilium token``; ``func(args)`` is the composition root's wrapper that supplies the
    demo users (the server package itself never imports the seed)."""
    tok = sub.add_parser(
        "token", help="print an access token for a demo user of a development data dir"
    )
    tok.add_argument("--user", required=True, help="a demo user, e.g. dr.patel")
    tok.add_argument(
        "--scope", action="append", help="scope (repeatable; default: the role's usual scopes)"
    )
    tok.add_argument("--lifetime", type=int, default=None, help="seconds (default: the server's)")
    tok.add_argument("--host", default=None, help="the server's host (default CONSILIUM_HOST)")
    tok.add_argument("--port", type=int, default=None, help="the server's port")
    tok.add_argument("--base-url", default=None, help="the server's public base URL, if set")
    common(tok)
    tok.set_defaults(func=func)


def add_parsers(sub: Any, common: Any, run: Any) -> None:
    """Register ``client add`` and ``user add``; ``run(fn)`` wraps fn with settings + database."""
    client = sub.add_parser("client", help="manage OAuth clients")
    client_sub = client.add_subparsers(dest="client_command", required=True)
    add = client_sub.add_parser(
        "add", help="register a client (confidential with --jwks, public otherwise)"
    )
    add.add_argument("--name", required=True)
    add.add_argument("--scope", action="append", help="allowed scope (repeatable)")
    add.add_argument("--jwks", help="JSON file with the client's public JWK or JWKS")
    add.add_argument("--redirect-uri", action="append", help="redirect URI (repeatable)")
    add.add_argument(
        "--grant",
        action="append",
        choices=["authorization_code", "client_credentials", "refresh_token"],
    )
    add.add_argument("--org", help="Organization id the client acts for")
    add.add_argument("--role", choices=ROLES)
    add.add_argument("--practitioner-role", help="a specialist's own PractitionerRole id")
    common(add)
    add.set_defaults(func=run(cmd_client_add))

    user = sub.add_parser("user", help="manage users who sign in on the authorization page")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    uadd = user_sub.add_parser("add", help="create or replace a user")
    uadd.add_argument("--username", required=True)
    uadd.add_argument("--password", help="prompted for when omitted")
    uadd.add_argument(
        "--fhir-user", help="e.g. PractitionerRole/role-doc-1 (omit for staff with no FHIR record)"
    )
    uadd.add_argument("--org")
    uadd.add_argument("--role", choices=ROLES)
    uadd.add_argument("--practitioner-role")
    common(uadd)
    uadd.set_defaults(func=run(cmd_user_add))

    keys = sub.add_parser("keys", help="manage the server's token signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser("rotate", help="create a new current signing key")
    common(rotate)
    rotate.set_defaults(func=cmd_keys_rotate)
