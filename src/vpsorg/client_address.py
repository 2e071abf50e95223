"""Who is calling: the client's address, seen through the proxies the operator trusts.

One function for everything that names the client (rate limits now, the audit trail later),
so they never disagree about who made a request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"
"""The address of a request whose transport names no peer (a Unix socket, some test clients)."""


def parse_networks(value: str | Iterable[str]) -> list[IPNetwork]:
    """``"10.0.0.0/8, 192.0.2.7"`` (or a list of such) as networks; a bare address is a /32 or /128.

    Host bits set under a prefix (``10.0.0.1/8``) are an error, not silently widened.
    """
    items = value.split(",") if isinstance(value, str) else value
    return [ipaddress.ip_network(item.strip()) for item in items if item.strip()]


def client_address(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> str:
    """The address of the client that made this request.

    The peer of the connection, unless the peer is a trusted proxy: then the right-most hop
    of ``X-Forwarded-For`` that is not itself a trusted proxy. Hops to its left were written
    by whoever the proxies talked to and can be anything, so they are never believed; if
    every hop is trusted, the left-most one is the client.
    """
    client = scope.get("client")
    peer = str(client[0]) if client else UNKNOWN
    if not trusted_proxies or not _is_trusted(_parse_address(peer), trusted_proxies):
        return peer
    hops = _forwarded_for(scope)
    nearest = peer
    for hop in reversed(hops):
        address = _parse_address(hop)
        if address is None:
            # Not an address: the trusted proxy did not write it, so the hop it came from
            # (the nearest one we can vouch for) is the best we know.
            return nearest
        if not _is_trusted(address, trusted_proxies):
            return str(address)
        nearest = str(address)
    return nearest


def _forwarded_for(scope: Scope) -> list[str]:
    values = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    ]
    return [hop.strip() for hop in ",".join(values).split(",") if hop.strip()]


def _parse_address(value: str) -> IPAddress | None:
    """An address as proxies write it: ``192.0.2.1``, ``192.0.2.1:4711``, ``[2001:db8::1]:443``."""
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _is_trusted(address: IPAddress | None, trusted_proxies: Sequence[IPNetwork]) -> bool:
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in trusted_proxies)
