"""Ledger queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account, CreditEntry


async def ledger(
    session: AsyncSession, account_id: int, offset: int, limit: int
) -> tuple[int, Sequence[CreditEntry]]:
    """Newest first."""
    condition = CreditEntry.account_id == account_id
    total = await session.scalar(select(func.count()).select_from(CreditEntry).where(condition))
    rows = await session.scalars(
        select(CreditEntry)
        .where(condition)
        .order_by(CreditEntry.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total or 0), rows.all()


async def any_account(session: AsyncSession) -> bool:
    """Whether the database holds an account at all (the demo is made only on an empty one)."""
    return await session.scalar(select(Account.id).limit(1)) is not None


async def accounts_with_server_counts(session: AsyncSession) -> Sequence[tuple[Account, int]]:
    """Every account, oldest first, with how many live (not deleted) servers it has."""
    from vpsorg.servers.models import Server, ServerStatus

    live = (
        select(Server.account_id, func.count().label("servers"))
        .where(Server.status != ServerStatus.DELETED)
        .group_by(Server.account_id)
        .subquery()
    )
    rows = await session.execute(
        select(Account, func.coalesce(live.c.servers, 0))
        .outerjoin(live, live.c.account_id == Account.id)
        .order_by(Account.id)
    )
    return [(account, int(count)) for account, count in rows.tuples()]
