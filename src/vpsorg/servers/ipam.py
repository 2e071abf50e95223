"""IP address management: one IPv4 and one IPv6 address per server, from its location's pools.

The first host address of each pool is the gateway. Allocation holds the location's row
lock (``lock_pools``: ``FOR NO KEY UPDATE``, which foreign-key checks do not wait on; SQLite's
write lock does the same), so concurrent creates in one location hand out the lowest free
addresses one after another instead of all chasing the same one: the addresses read under the
lock are still free when the server is inserted. Addresses are also unique columns on the
server row: the database, not this code, has the last word that no address is held twice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.catalog.models import Location
from vpsorg.errors import CapacityUnavailable
from vpsorg.servers import repository
from vpsorg.servers.models import Server


def gateway(pool: str) -> str:
    return str(next(ipaddress.ip_network(pool).hosts()))


def prefix_length(pool: str) -> int:
    network = ipaddress.ip_network(pool)
    return 64 if network.version == 6 and network.prefixlen < 64 else network.prefixlen


def _candidates(pool: str, used: set[str]) -> Iterator[str]:
    hosts = ipaddress.ip_network(pool).hosts()
    next(hosts, None)  # the gateway
    for address in hosts:
        text = str(address)
        if text not in used:
            yield text


async def lock_pools(session: AsyncSession, location: Location) -> None:
    """Serialize address allocation in one location until the transaction ends."""
    await session.execute(
        select(Location.code).where(Location.code == location.code).with_for_update(key_share=True)
    )


async def insert_with_addresses(session: AsyncSession, server: Server, location: Location) -> None:
    """Insert the new server holding the lowest free IPv4 and IPv6 address of its location.

    Call ``lock_pools`` first. Raises CapacityUnavailable when a pool is exhausted, or when
    the unique columns refuse an address (only a writer that skipped the lock, or pools of
    two locations that overlap, can cause that): the client tries again, and no address is
    ever held twice.
    """
    ipv4_used, ipv6_used = await repository.addresses_in_use(session, location.code)
    server.ipv4_address = _lowest_free(location.ipv4_pool, ipv4_used, "IPv4", location)
    server.ipv6_address = _lowest_free(location.ipv6_pool, ipv6_used, "IPv6", location)
    session.add(server)
    try:
        await session.flush()
    except IntegrityError as exc:
        if not _is_address_conflict(exc):
            raise
        raise CapacityUnavailable("Address allocation is congested; try again.") from exc


def _lowest_free(pool: str, used: set[str], family: str, location: Location) -> str:
    address = next(_candidates(pool, used), None)
    if address is None:
        raise CapacityUnavailable(
            f"No free {family} address is left in location '{location.code}'."
        )
    return address


def _is_address_conflict(exc: IntegrityError) -> bool:
    message = str(exc.orig)
    return "ipv4_address" in message or "ipv6_address" in message
