"""Which notification endpoints the server may call (SSRF defence), decided at Subscription
create and again before every delivery.

Rules (docs/notifications.md): ``http``/``https`` only, no credentials in the URL; with an
allow-list configured (``CONSILIUM_NOTIFY_ALLOW_HOSTS``) the host must be on it and may then
resolve anywhere (an on-premises EHR on a private network is the reason to list it); without one
every address the host resolves to must be public: private, link-local (which holds the cloud
metadata address 169.254.169.254), loopback, multicast, reserved and unspecified ranges are
refused, loopback being allowed only with ``CONSILIUM_NOTIFY_ALLOW_LOOPBACK=true`` (development
and tests). Resolving the host name is part of the check: ``metadata.internal`` or a DNS name
pointing at 10.0.0.1 is as unsafe as the literal address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud metadata endpoints outside the link-local range (AWS IPv6, Alibaba, Oracle's 192.0.0.192
# is in a reserved range already).
METADATA = (ipaddress.ip_network("fd00:ec2::254/128"), ipaddress.ip_network("100.100.100.200/32"))


class UnsafeEndpoint(ValueError):
    """The endpoint may not be called; the message says why (shown in the 422)."""


@dataclass(frozen=True)
class EndpointPolicy:
    allow_hosts: tuple[str, ...] = ()
    allow_loopback: bool = False

    @classmethod
    def from_settings(cls, allow_hosts: str, allow_loopback: bool) -> EndpointPolicy:
        hosts = tuple(h.strip().lower() for h in allow_hosts.split(",") if h.strip())
        return cls(hosts, allow_loopback)


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeEndpoint(f"the host {host!r} does not resolve") from exc
    return [str(info[4][0]) for info in infos]


def _listed(host: str, allow: Sequence[str]) -> bool:
    for pattern in allow:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def address_problem(addr: IPAddress, allow_loopback: bool) -> str | None:
    """Why ``addr`` is not a public destination (None: it is)."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return address_problem(addr.ipv4_mapped, allow_loopback)
    if addr.is_loopback:
        return None if allow_loopback else "a loopback address"
    if any(addr in net for net in METADATA):
        return "a cloud metadata address"
    if addr.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if addr.is_private:
        return "a private address"
    if addr.is_multicast or addr.is_reserved or addr.is_unspecified:
        return "a reserved address"
    if not addr.is_global:
        return "a non-public address"
    return None


def check_endpoint(
    url: str, policy: EndpointPolicy, resolve: Resolver = system_resolver
) -> list[str]:
    """Raise ``UnsafeEndpoint`` unless ``url`` is a safe destination; return its addresses."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeEndpoint(f"{url!r} is not a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeEndpoint("the endpoint must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeEndpoint("credentials in the endpoint URL are not allowed (use channel.header)")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise UnsafeEndpoint("the endpoint URL has no host")
    port = port or (443 if parts.scheme == "https" else 80)
    listed = _listed(host, policy.allow_hosts)
    if policy.allow_hosts and not listed:
        raise UnsafeEndpoint(f"the host {host!r} is not on the allowed notification hosts")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [str(literal)] if literal is not None else resolve(host, port)
    if not addresses:
        raise UnsafeEndpoint(f"the host {host!r} does not resolve")
    if listed:
        return addresses
    for raw in addresses:
        addr = ipaddress.ip_address(raw.split("%", 1)[0])
        problem = address_problem(addr, policy.allow_loopback)
        if problem is not None:
            raise UnsafeEndpoint(f"the endpoint host {host!r} resolves to {problem} ({addr})")
    return addresses
