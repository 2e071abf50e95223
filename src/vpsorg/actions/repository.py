"""Action queries for the API (the queue's own queries live in queue.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.actions.models import Action, ActionCommand, ActionStatus
from vpsorg.catalog.models import SshKey
from vpsorg.servers.models import Server

FINISHED_STATUSES = (ActionStatus.SUCCESS, ActionStatus.ERROR)


async def get_owned(session: AsyncSession, account_id: int, action_id: int) -> Action | None:
    return await session.scalar(
        select(Action).where(Action.id == action_id, Action.account_id == account_id)
    )


async def finished_among(session: AsyncSession, action_ids: Sequence[int]) -> Sequence[Action]:
    """Those of ``action_ids`` that have finished (the long-polls' batched re-check)."""
    query = select(Action).where(
        Action.id.in_(list(action_ids)), Action.status.in_(list(FINISHED_STATUSES))
    )
    return (await session.scalars(query)).all()


async def get_many(session: AsyncSession, action_ids: Sequence[int]) -> Sequence[Action]:
    """The actions of ``action_ids``, whoever owns them (the notifier's wake-up read)."""
    return (await session.scalars(select(Action).where(Action.id.in_(list(action_ids))))).all()


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


async def load_subjects(session: AsyncSession, actions: Sequence[Action]) -> list[object]:
    """Read the servers of ``actions`` (with their plan, OS, location and host) and the SSH
    keys of those being created, in one query each, into ``session``: ``lifecycle.prepare``
    then finds them there instead of reading them one action at a time. Keep the returned
    list while preparing (the session holds its objects weakly)."""
    server_ids = {action.server_id for action in actions}
    servers = (await session.scalars(select(Server).where(Server.id.in_(server_ids)))).all()
    created = {action.server_id for action in actions if action.command == ActionCommand.CREATE}
    key_ids = {s.ssh_key_id for s in servers if s.id in created and s.ssh_key_id is not None}
    keys: Sequence[SshKey] = ()
    if key_ids:
        keys = (await session.scalars(select(SshKey).where(SshKey.id.in_(key_ids)))).all()
    return [*servers, *keys]
