"""Suspending an account's servers (out of credits, or by an operator) and lifting it.

When to suspend and lift is decided in ``billing/service.py``; this is what it does.

While suspended, the account's servers show ``suspended``: running ones are stopped through
a ``suspend`` action each, stopped ones just change status. Nothing is ever deleted. Lifting
the suspension returns them to ``stopped``; the customer starts them again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.actions import queue
from vpsorg.actions.models import ActionCommand
from vpsorg.servers import repository
from vpsorg.servers.models import Server, ServerStatus

CREDITS_REASON = "insufficient credits"


async def suspend(session: AsyncSession, account: Account, reason: str, *, at: datetime) -> int:
    """Suspend the (locked) account from ``at``; returns how many servers were suspended now.

    An account already suspended keeps its start and takes the new reason (an operator's
    reason replaces "insufficient credits", so a top-up no longer lifts it).
    """
    if account.suspended_at is None:
        account.suspended_at = at
    account.suspended_reason = reason
    return await suspend_servers(session, account)


async def suspend_servers(session: AsyncSession, account: Account) -> int:
    """Suspend the account's active and stopped servers (busy ones are caught next sweep)."""
    servers = await session.scalars(
        select(Server).where(
            Server.account_id == account.id,
            Server.deleted_at.is_(None),
            Server.status.in_([ServerStatus.ACTIVE, ServerStatus.STOPPED]),
        )
    )
    count = 0
    for server in servers.all():
        previous = server.status
        if not await repository.transition(session, server.id, [previous], ServerStatus.SUSPENDED):
            continue
        if previous == ServerStatus.ACTIVE:
            await queue.enqueue(session, server.id, account.id, ActionCommand.SUSPEND)
        count += 1
    await session.flush()
    return count


async def unsuspend(session: AsyncSession, account: Account) -> int:
    """Lift the suspension; suspended servers become ``stopped``. Returns how many."""
    account.suspended_at = None
    account.suspended_reason = None
    servers = await session.scalars(
        select(Server.id).where(
            Server.account_id == account.id,
            Server.deleted_at.is_(None),
            Server.status == ServerStatus.SUSPENDED,
        )
    )
    count = 0
    for server_id in servers.all():
        if await repository.transition(
            session, server_id, [ServerStatus.SUSPENDED], ServerStatus.STOPPED
        ):
            count += 1
    await session.flush()
    return count


def suspended_for_credits(account: Account) -> bool:
    return account.suspended_at is not None and account.suspended_reason == CREDITS_REASON
