"""IP address management: one IPv4 and one IPv6 address per server, from its location's pools.

The first host address of each pool is the gateway. Allocation holds the location's row
lock (``lock_pools``: ``FOR NO KEY UPDATE``, which foreign-key checks do not wait on; SQLite's
write lock does the same), so concurrent creates in one location hand out the lowest free
addresses one after another instead of all chasing the same one. Addresses are also unique columns on the server row: the database, not this code,
has the last word that no address is held twice.
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

MAX_RACE_RETRIES = 8


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


async def assign_addresses(session: AsyncSession, server: Server, location: Location) -> None:
    """Give the (flushed) server a free IPv4 and IPv6 address, or raise CapacityUnavailable.

    Call ``lock_pools`` first, before anything in the transaction references the location.
    """
    for column, pool in (
        ("ipv4_address", location.ipv4_pool),
        ("ipv6_address", location.ipv6_pool),
    ):
        for _attempt in range(MAX_RACE_RETRIES):
            used = await repository.addresses_in_use(session, column, location.code)
            address = next(_candidates(pool, used), None)
            if address is None:
                raise CapacityUnavailable(
                    f"No free {'IPv4' if column == 'ipv4_address' else 'IPv6'} address "
                    f"is left in location '{location.code}'."
                )
            try:
                async with session.begin_nested():
                    setattr(server, column, address)
                    await session.flush()
                break
            except IntegrityError:
                setattr(server, column, None)
        else:
            raise CapacityUnavailable("Address allocation is congested; try again.")
