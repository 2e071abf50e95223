"""Location and address-range queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, case, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

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


async def ranges_with_released(
    session: AsyncSession, code: str
) -> Sequence[tuple[AddressRange, int | None]]:
    """A location's ranges, oldest first, each with its lowest released offset (or None), in
    one query: an allocation's one read, however many servers the location has.

    Run it after ``lock``: the statement's snapshot then shows every cursor and released
    offset as the last holder of the lock left them.
    """
    lowest = (
        select(func.min(ReleasedAddress.offset))
        .where(ReleasedAddress.range_id == AddressRange.id)
        .correlate(AddressRange)
        .scalar_subquery()
    )
    query = (
        select(AddressRange, lowest)
        .where(AddressRange.location_code == code)
        .order_by(AddressRange.id)
        .execution_options(populate_existing=True)
    )
    rows = await session.execute(query)
    return [(r, None if offset is None else int(offset)) for r, offset in rows.all()]


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


async def take_next(
    session: AsyncSession, address_range: AddressRange, gateway_offset: int, last: int
) -> int | None:
    """Hand out the range's next offset (the cursor, or the one after it when the cursor is
    on the gateway) and move the cursor past it, in one UPDATE; None when the range is full.

    Concurrent takers need no other lock: each UPDATE waits for the row's previous writer
    to end and then works on the cursor as that one left it (PostgreSQL re-reads the row;
    SQLite has one writer at a time).
    """
    gateway = literal(gateway_offset, BigInteger())
    handed = case(
        (AddressRange.next_offset == gateway, gateway + 1), else_=AddressRange.next_offset
    )
    result = await session.execute(
        update(AddressRange)
        .where(
            AddressRange.id == address_range.id,
            handed <= literal(min(last, MAX_OFFSET), BigInteger()),
        )
        .values(next_offset=handed + 1)
        .returning(AddressRange.next_offset)
        .execution_options(synchronize_session=False)
    )
    cursor = result.scalar_one_or_none()
    if cursor is None:
        return None
    set_committed_value(address_range, "next_offset", int(cursor))
    return int(cursor) - 1


def add_released(session: AsyncSession, range_id: int, offset: int) -> None:
    session.add(ReleasedAddress(range_id=range_id, offset=offset))


async def released_counts(session: AsyncSession) -> dict[int, int]:
    """Released offsets by range id (for ``locations list``: used = handed out - released)."""
    query = select(ReleasedAddress.range_id, func.count()).group_by(ReleasedAddress.range_id)
    return {int(range_id): int(count) for range_id, count in await session.execute(query)}
