"""``consilium client add`` / ``consilium user add``: the CLI face of client registration.

Same validation as ``POST /oauth/register`` (RFC 7591 metadata, ``auth.clients``), written
straight to the database the server uses, so an operator can bootstrap clients without the
admin token.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from auth.errors import OAuthError
from auth.principal import ROLES
from auth.store import AuthStore


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
    print(f"user {args.username} saved ({args.fhir_user})")
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
    uadd.add_argument("--fhir-user", required=True, help="e.g. PractitionerRole/role-doc-1")
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
