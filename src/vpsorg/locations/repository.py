"""Location and address-range queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import BigInteger, bindparam, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.db import table_of
from vpsorg.locations.models import AddressRange, Location, ReleasedAddress


async def get(session: AsyncSession, code: str) -> Location | None:
    return await session.get(Location, code)


async def list_all(session: AsyncSession) -> Sequence[Location]:
    return (await session.scalars(select(Location).order_by(Location.code))).all()


async def lock(session: AsyncSession, code: str) -> None:
    """The location's row lock, until the transaction ends (serializes its addresses)."""
    await session.execute(
        select(Location.code).where(Location.code == code).with_for_update(key_share=True)
    )


async def ranges_of(session: AsyncSession, code: str) -> Sequence[AddressRange]:
    """A location's ranges, oldest first, as the database has them now (cursors included)."""
    query = (
        select(AddressRange)
        .where(AddressRange.location_code == code)
        .order_by(AddressRange.id)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).all()


_RANGES = table_of(AddressRange)
_RANGES_WITH_RELEASED = (
    select(
        _RANGES.c.id,
        _RANGES.c.family,
        _RANGES.c.cidr,
        _RANGES.c.gateway,
        _RANGES.c.next_offset,
        select(func.min(table_of(ReleasedAddress).c.offset))
        .where(table_of(ReleasedAddress).c.range_id == _RANGES.c.id)
        .correlate(_RANGES)
        .scalar_subquery()
        .label("released"),
    )
    .where(_RANGES.c.location_code == bindparam("code"))
    .order_by(_RANGES.c.id)
)


class RangeCursor(NamedTuple):
    """What an allocation reads of a range: its shape, its cursor and its lowest released
    offset (None when none is released)."""

    id: int
    family: int
    cidr: str
    gateway: str
    next_offset: int
    released: int | None


async def ranges_with_released(session: AsyncSession, code: str) -> list[RangeCursor]:
    """A location's ranges, oldest first, each with its lowest released offset, in one
    query: an allocation's one read, however many servers the location has.

    Run it after ``lock``: the statement's snapshot then shows every cursor and released
    offset as the last holder of the lock left them.
    """
    rows = await session.execute(_RANGES_WITH_RELEASED, {"code": code})
    return [RangeCursor(*row) for row in rows]


async def all_ranges(session: AsyncSession) -> Sequence[AddressRange]:
    query = select(AddressRange).order_by(AddressRange.location_code, AddressRange.id)
    return (await session.scalars(query)).all()


async def forget_released(session: AsyncSession, range_id: int, offset: int) -> None:
    await session.execute(
        delete(ReleasedAddress).where(
            ReleasedAddress.range_id == range_id, ReleasedAddress.offset == offset
        )
    )


MAX_OFFSET = 2**63 - 1
"""The largest cursor a BIGINT holds: an IPv6 range's last offset may be far beyond it."""


_GATEWAY = bindparam("gateway_offset", type_=BigInteger())
_HANDED = case((_RANGES.c.next_offset == _GATEWAY, _GATEWAY + 1), else_=_RANGES.c.next_offset)
"""The offset a range hands out next: its cursor, or the one after it on the gateway."""
_TAKE_NEXT = (
    update(_RANGES)
    .where(_RANGES.c.id == bindparam("range_id"), bindparam("last", type_=BigInteger()) >= _HANDED)
    .values(next_offset=_HANDED + 1)
    .returning(_RANGES.c.next_offset)
)


async def take_next(
    session: AsyncSession, range_id: int, gateway_offset: int, last: int
) -> int | None:
    """Hand out the range's next offset (the cursor, or the one after it when the cursor is
    on the gateway) and move the cursor past it, in one UPDATE; None when the range is full.

    Concurrent takers need no other lock: each UPDATE waits for the row's previous writer
    to end and then works on the cursor as that one left it (PostgreSQL re-reads the row;
    SQLite has one writer at a time).
    """
    parameters = {"range_id": range_id, "gateway_offset": gateway_offset, "last": min(last, MAX_OFFSET)}
    cursor = await session.scalar(_TAKE_NEXT, parameters)
    return None if cursor is None else int(cursor) - 1


def add_released(session: AsyncSession, range_id: int, offset: int) -> None:
    session.add(ReleasedAddress(range_id=range_id, offset=offset))


async def released_counts(session: AsyncSession) -> dict[int, int]:
    """Released offsets by range id (for ``locations list``: used = handed out - released)."""
    query = select(ReleasedAddress.range_id, func.count()).group_by(ReleasedAddress.range_id)
    return {int(range_id): int(count) for range_id, count in await session.execute(query)}
