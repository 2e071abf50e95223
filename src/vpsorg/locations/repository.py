"""Location and address-range queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
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


async def all_ranges(session: AsyncSession) -> Sequence[AddressRange]:
    query = select(AddressRange).order_by(AddressRange.location_code, AddressRange.id)
    return (await session.scalars(query)).all()


async def lowest_released(session: AsyncSession, range_ids: list[int]) -> tuple[int, int] | None:
    """The released offset to reuse first: lowest range id, then lowest offset (the primary
    key's order, so one index probe)."""
    query = (
        select(ReleasedAddress.range_id, ReleasedAddress.offset)
        .where(ReleasedAddress.range_id.in_(range_ids))
        .order_by(ReleasedAddress.range_id, ReleasedAddress.offset)
        .limit(1)
    )
    row = (await session.execute(query)).first()
    return None if row is None else (int(row[0]), int(row[1]))


async def forget_released(session: AsyncSession, range_id: int, offset: int) -> None:
    await session.execute(
        delete(ReleasedAddress).where(
            ReleasedAddress.range_id == range_id, ReleasedAddress.offset == offset
        )
    )


async def advance(session: AsyncSession, address_range: AddressRange, next_offset: int) -> None:
    await session.execute(
        update(AddressRange)
        .where(AddressRange.id == address_range.id)
        .values(next_offset=next_offset)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(address_range, "next_offset", next_offset)


def add_released(session: AsyncSession, range_id: int, offset: int) -> None:
    session.add(ReleasedAddress(range_id=range_id, offset=offset))


async def released_counts(session: AsyncSession) -> dict[int, int]:
    """Released offsets by range id (for ``locations list``: used = handed out - released)."""
    query = select(ReleasedAddress.range_id, func.count()).group_by(ReleasedAddress.range_id)
    return {int(range_id): int(count) for range_id, count in await session.execute(query)}
