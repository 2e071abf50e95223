"""Server queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.clock import utcnow
from vpsorg.servers.models import Server


def _visible(account_id: int):  # type: ignore[no-untyped-def]
    return (Server.account_id == account_id, Server.deleted_at.is_(None))


async def get_owned(session: AsyncSession, account_id: int, server_id: int) -> Server | None:
    """The account's server, unless deleted. Another account's server is simply absent."""
    return await session.scalar(select(Server).where(Server.id == server_id, *_visible(account_id)))


async def list_owned(
    session: AsyncSession,
    account_id: int,
    *,
    status: str | None,
    location: str | None,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[Server]]:
    conditions = [*_visible(account_id)]
    if status is not None:
        conditions.append(Server.status == status)
    if location is not None:
        conditions.append(Server.location_code == location)
    total = await session.scalar(select(func.count()).select_from(Server).where(*conditions))
    rows = await session.scalars(
        select(Server).where(*conditions).order_by(Server.id).offset(offset).limit(limit)
    )
    return int(total or 0), rows.all()


async def count_live(session: AsyncSession, account_id: int) -> int:
    query = select(func.count()).select_from(Server).where(*_visible(account_id))
    return int(await session.scalar(query) or 0)


async def addresses_of(session: AsyncSession, server_id: int) -> list[str]:
    """The addresses a server holds, as the database has them now."""
    row = (
        await session.execute(
            select(Server.ipv4_address, Server.ipv6_address).where(Server.id == server_id)
        )
    ).first()
    return [] if row is None else [address for address in row if address is not None]


async def transition(
    session: AsyncSession,
    server_id: int,
    from_statuses: Iterable[str],
    to_status: str,
    *,
    unchanged_since: datetime | None = None,
    **values: Any,
) -> bool:
    """Move a server from one of ``from_statuses`` to ``to_status``, atomically.

    The guard is in the UPDATE's WHERE clause, so of two racing requests (in any number of
    processes) exactly one sees a row count of 1; the other knows it lost. With
    ``unchanged_since`` (the ``updated_at`` a caller read) the move also loses if anything
    changed the server since, even if its status came back to the same value.
    """
    guard = [Server.id == server_id, Server.status.in_(list(from_statuses))]
    if unchanged_since is not None:
        guard.append(Server.updated_at == unchanged_since)
    result = await session.execute(
        update(Server)
        .where(*guard)
        .values(status=to_status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_by_status_and_location(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Servers (deleted ones too) by (status, location code)."""
    query = select(Server.status, Server.location_code, func.count()).group_by(
        Server.status, Server.location_code
    )
    return {
        (status, location): int(count) for status, location, count in await session.execute(query)
    }
