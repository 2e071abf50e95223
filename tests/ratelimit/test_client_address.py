"""Who the client is, behind the proxies the operator trusts (unit tests: no HTTP needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vpsorg.client_address import client_address, parse_networks
from vpsorg.config import Settings

TRUSTED = parse_networks("10.0.0.0/8, 2001:db8:ffff::/48, 127.0.0.1")


def scope(peer: str | None, *forwarded_for: str) -> dict:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded_for]
    return {"type": "http", "client": (peer, 1234) if peer else None, "headers": headers}


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("192.0.2.1", [], "192.0.2.1"),
        ("192.0.2.1", ["198.51.100.1"], "192.0.2.1"),  # not a proxy: the header is the client's
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["203.0.113.5, 198.51.100.1"], "198.51.100.1"),  # the left is hearsay
        ("10.0.0.1", ["203.0.113.5, 198.51.100.1, 10.0.0.2"], "198.51.100.1"),
        ("10.0.0.1", ["203.0.113.5", "198.51.100.1"], "198.51.100.1"),  # repeated headers
        ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # all trusted: the left-most
        ("10.0.0.1", ["198.51.100.1:4711"], "198.51.100.1"),
        ("10.0.0.1", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("2001:db8:ffff::1", ["2001:db8::7"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["198.51.100.1"], "198.51.100.1"),  # IPv4-mapped proxy
        ("10.0.0.1", ["198.51.100.1, not-an-address, 10.0.0.2"], "10.0.0.2"),
        ("10.0.0.1", ["garbage"], "10.0.0.1"),
        ("10.0.0.1", [" , "], "10.0.0.1"),
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_address(peer, forwarded_for, client):
    assert client_address(scope(peer, *forwarded_for), TRUSTED) == client


def test_no_trusted_proxies_means_the_peer():
    assert client_address(scope("127.0.0.1", "198.51.100.1"), []) == "127.0.0.1"


def test_settings_parse_and_check_the_rate_limit_settings(monkeypatch):
    monkeypatch.setenv("VPSORG_RATE_LIMITS", "5000/hour, 250/minute")
    monkeypatch.setenv("VPSORG_TRUSTED_PROXIES", "10.0.0.0/8,::1")
    settings = Settings()
    assert [str(item) for item in settings.token_rate_limits] == [
        "250 per 1 minute",
        "5000 per 1 hour",
    ]
    assert settings.client_rate_limits == settings.token_rate_limits
    assert [str(network) for network in settings.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    assert settings.redis_url is None

    assert Settings(rate_limits="").token_rate_limits == []
    assert (
        Settings(rate_limits="", address_rate_limits="9/second").client_rate_limits[0].amount == 9
    )
    for bad in (
        {"rate_limits": "many/minute"},
        {"address_rate_limits": "5/fortnight"},
        {"trusted_proxies": "10.0.0.1/8"},
        {"trusted_proxies": "proxy.example.com"},
        {"redis_url": "http://127.0.0.1:6379"},
    ):
        with pytest.raises(ValidationError):
            Settings(**bad)
