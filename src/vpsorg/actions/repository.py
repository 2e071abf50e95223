"""Action queries for the API (the queue's own queries live in queue.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.actions.models import Action


async def get_owned(session: AsyncSession, account_id: int, action_id: int) -> Action | None:
    return await session.scalar(
        select(Action).where(Action.id == action_id, Action.account_id == account_id)
    )


async def get_many_owned(
    session: AsyncSession, account_id: int, action_ids: Sequence[int]
) -> Sequence[Action]:
    query = (
        select(Action)
        .where(Action.id.in_(list(action_ids)), Action.account_id == account_id)
        .order_by(Action.id)
    )
    return (await session.scalars(query)).all()


async def history(
    session: AsyncSession, account_id: int, server_id: int | None, offset: int, limit: int
) -> tuple[int, Sequence[Action]]:
    """Newest first."""
    conditions = [Action.account_id == account_id]
    if server_id is not None:
        conditions.append(Action.server_id == server_id)
    total = await session.scalar(select(func.count()).select_from(Action).where(*conditions))
    rows = await session.scalars(
        select(Action).where(*conditions).order_by(Action.id.desc()).offset(offset).limit(limit)
    )
    return int(total or 0), rows.all()
