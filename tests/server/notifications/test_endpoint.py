"""Endpoint safety (pure; the resolver is injected so names resolve to the addresses given)."""

from __future__ import annotations

import pytest

from server.notifications.endpoint import EndpointPolicy, UnsafeEndpoint, check_endpoint

DNS = {
    "ehr.example.org": ["93.184.216.34"],
    "inside.example.org": ["10.1.2.3"],
    "rebind.example.org": ["93.184.216.34", "192.168.1.1"],
    "localhost": ["127.0.0.1", "::1"],
    "metadata.google.internal": ["169.254.169.254"],
    "v6.example.org": ["2606:4700::1111"],
    "mapped.example.org": ["::ffff:10.0.0.1"],
}


def resolve(host: str, _port: int) -> list[str]:
    return DNS.get(host, [])


OPEN = EndpointPolicy()
LOOPBACK = EndpointPolicy(allow_loopback=True)
LISTED = EndpointPolicy(allow_hosts=("inside.example.org", "*.hooks.example.org"))


@pytest.mark.parametrize(
    ("url", "policy"),
    [
        ("https://ehr.example.org/fhir/hook", OPEN),
        ("http://ehr.example.org:8443/hook", OPEN),
        ("https://v6.example.org/hook", OPEN),
        ("http://127.0.0.1:9999/hook", LOOPBACK),
        ("http://localhost/hook", LOOPBACK),
        ("https://inside.example.org/hook", LISTED),
    ],
)
def test_safe_endpoints_pass(url: str, policy: EndpointPolicy) -> None:
    assert check_endpoint(url, policy, resolve)


@pytest.mark.parametrize(
    ("url", "policy", "why"),
    [
        ("ftp://ehr.example.org/x", OPEN, "http or https"),
        ("file:///etc/passwd", OPEN, "http or https"),
        ("https://user:pw@ehr.example.org/x", OPEN, "credentials"),
        ("https:///nohost", OPEN, "no host"),
        ("http://127.0.0.1/hook", OPEN, "loopback"),
        ("http://localhost/hook", OPEN, "loopback"),
        ("http://[::1]/hook", OPEN, "loopback"),
        ("http://169.254.169.254/latest/meta-data", OPEN, "link-local"),
        ("http://metadata.google.internal/", OPEN, "link-local"),
        ("http://[fd00:ec2::254]/", OPEN, "metadata"),
        ("http://100.100.100.200/", OPEN, "metadata"),
        ("http://10.0.0.7/hook", OPEN, "private"),
        ("http://inside.example.org/hook", OPEN, "private"),
        ("http://rebind.example.org/hook", OPEN, "private"),
        ("http://mapped.example.org/hook", OPEN, "private"),
        ("http://0.0.0.0/hook", OPEN, "address"),
        ("http://nowhere.example.org/hook", OPEN, "does not resolve"),
        ("https://ehr.example.org/hook", LISTED, "not on the allowed"),
        ("https://hooks.example.org/hook", LISTED, "not on the allowed"),
        ("http://127.0.0.1:99999/hook", LOOPBACK, "not a valid URL"),
    ],
)
def test_unsafe_endpoints_are_refused(url: str, policy: EndpointPolicy, why: str) -> None:
    with pytest.raises(UnsafeEndpoint, match=why):
        check_endpoint(url, policy, resolve)


def test_a_wildcard_entry_allows_subdomains_only() -> None:
    DNS["a.hooks.example.org"] = ["10.9.9.9"]
    assert check_endpoint("https://a.hooks.example.org/x", LISTED, resolve) == ["10.9.9.9"]


def test_allow_hosts_setting_is_comma_separated() -> None:
    p = EndpointPolicy.from_settings(" A.example.org, ,*.b.example.org ", False)
    assert p.allow_hosts == ("a.example.org", "*.b.example.org")
