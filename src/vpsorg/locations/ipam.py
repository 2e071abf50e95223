"""IP address management: one IPv4 and one IPv6 address per server, from its location's ranges.

An address is a range's network address plus an *offset*. Each range keeps a cursor
(``next_offset``: the first offset never handed out) and the offsets deleted servers gave
back (``released_addresses``), which are reused first, lowest range and offset first. So an
allocation is a fixed handful of indexed statements (the ranges of the location with their
lowest released offsets, one UPDATE or DELETE per family, the server's UPDATE) whatever the
number of servers: it never reads the addresses in use. The first address of a new range is the one after its gateway, as before
(``203.0.113.2`` in a /24 whose gateway is ``.1``).

Allocation and release hold the location's row lock (``lock_pools``: ``FOR NO KEY UPDATE``,
which foreign-key checks do not wait on; SQLite's write lock does the same), so concurrent
creates in one location take offsets one after another. Addresses are also unique columns on
the server row: the database, not this code, has the last word that no address is held twice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.errors import CapacityUnavailable
from vpsorg.locations import repository
from vpsorg.locations.models import AddressRange, Location
from vpsorg.servers import repository as servers
from vpsorg.servers.models import Server

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Below a /64 an IPv6 range is still handed out from its start, so guests get a /64 on-link.
IPV6_GUEST_PREFIX = 64


@dataclass(frozen=True)
class Shape:
    """The arithmetic of one range: which offsets may be handed out."""

    network: Network
    gateway_offset: int

    @classmethod
    def of(cls, cidr: str, gateway: str) -> Shape:
        network = ipaddress.ip_network(cidr)
        return cls(network, int(ipaddress.ip_address(gateway)) - int(network.network_address))

    @property
    def first(self) -> int:
        return 1  # IPv4: not the network address; IPv6: not the subnet-router anycast

    @property
    def last(self) -> int:
        size = self.network.num_addresses
        return size - 2 if self.network.version == 4 else size - 1  # IPv4: not the broadcast

    @property
    def capacity(self) -> int:
        """Addresses servers may hold: every host address but the gateway."""
        return self.last - self.first + 1 - (self.first <= self.gateway_offset <= self.last)

    def address(self, offset: int) -> str:
        return str(self.network.network_address + offset)

    def offset(self, address: str) -> int | None:
        """The address's offset in this range, or None when it is not in it."""
        parsed = ipaddress.ip_address(address)
        if parsed.version != self.network.version or parsed not in self.network:
            return None
        return int(parsed) - int(self.network.network_address)

    def handed_out(self, next_offset: int) -> int:
        """How many offsets the cursor has passed (released ones included)."""
        passed = max(0, min(next_offset, self.last + 1) - self.first)
        return passed - (self.first <= self.gateway_offset < next_offset)

    @property
    def guest_prefix(self) -> int:
        if self.network.version == 6:
            return max(self.network.prefixlen, IPV6_GUEST_PREFIX)
        return self.network.prefixlen


class HasShape(Protocol):
    @property
    def cidr(self) -> str: ...
    @property
    def gateway(self) -> str: ...


def shape(address_range: HasShape) -> Shape:
    return _shape(address_range.cidr, address_range.gateway)


@lru_cache(maxsize=1024)
def _shape(cidr: str, gateway: str) -> Shape:
    """Shapes are read on every create, and ranges seldom change: parsed once."""
    return Shape.of(cidr, gateway)


async def lock_pools(session: AsyncSession, location: Location) -> None:
    """Serialize address allocation in one location until the transaction ends."""
    await repository.lock(session, location.code)


async def assign_addresses(session: AsyncSession, server: Server, location: Location) -> None:
    """Give a new server, inserted in this transaction, a free IPv4 (and IPv6, if the location
    has a range) address of its location: one read, one write per family, and the server's
    UPDATE (which also writes its ``host_id``).

    A range's cursor is taken by an UPDATE that orders concurrent creates by itself; its row
    lock lasts until the commit, so call this last. Offsets given back are reused first, and
    which is lowest is only settled under the location's lock: when the read shows any, the
    lock is taken and the ranges read again. Raises CapacityUnavailable when every range of
    a family is full, or when the unique columns refuse an address (only a writer that
    skipped the lock, or ranges of two locations that overlap, can cause that): the client
    tries again, and no address is ever held twice.
    """
    ranges = await repository.ranges_with_released(session, location.code)
    if any(r.released is not None for r in ranges):
        await lock_pools(session, location)
        ranges = await repository.ranges_with_released(session, location.code)
    ipv4 = [r for r in ranges if r.family == 4]
    ipv6 = [r for r in ranges if r.family == 6]
    if not ipv4:
        raise CapacityUnavailable(f"Location '{location.code}' has no IPv4 range.")
    server.ipv4_address = await _take(session, ipv4, "IPv4", location)
    server.ipv6_address = await _take(session, ipv6, "IPv6", location) if ipv6 else None
    try:
        await servers.set_placement(session, server)
    except IntegrityError as exc:
        if not _is_address_conflict(exc):
            raise
        raise CapacityUnavailable("Address allocation is congested; try again.") from exc


async def _take(
    session: AsyncSession,
    ranges: Sequence[repository.RangeCursor],
    family: str,
    location: Location,
) -> str:
    """A released offset first (lowest range, then lowest offset), else the cursor of the
    first range that has room."""
    for address_range in ranges:
        if address_range.released is not None:
            await repository.forget_released(session, address_range.id, address_range.released)
            return shape(address_range).address(address_range.released)
    for address_range in ranges:
        form = shape(address_range)
        if _handed_next(form, address_range.next_offset) > form.last:
            continue  # full when read, so full now: a cursor only moves on
        offset = await repository.take_next(
            session, address_range.id, form.gateway_offset, form.last
        )
        if offset is not None:
            return form.address(offset)
    raise CapacityUnavailable(f"No free {family} address is left in location '{location.code}'.")


async def release(session: AsyncSession, location_code: str, addresses: Iterable[str]) -> None:
    """Give a deleted server's addresses back to their ranges, to be reused first."""
    await repository.lock(session, location_code)
    ranges = await repository.ranges_of(session, location_code)
    for address in addresses:
        for address_range in ranges:
            offset = shape(address_range).offset(address)
            if offset is not None:
                repository.add_released(session, address_range.id, offset)
                break


def _handed_next(form: Shape, cursor: int) -> int:
    """The offset the cursor hands out next: itself, or the one after it on the gateway."""
    return cursor + 1 if cursor == form.gateway_offset else cursor


def holding_range(ranges: Iterable[AddressRange], address: str | None) -> AddressRange | None:
    """The range an address belongs to."""
    if address is None:
        return None
    return next((r for r in ranges if shape(r).offset(address) is not None), None)


def _is_address_conflict(exc: IntegrityError) -> bool:
    message = str(exc.orig)
    return "ipv4_address" in message or "ipv6_address" in message
