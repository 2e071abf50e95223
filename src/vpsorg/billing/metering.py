"""Hourly metering: each server pays its plan's hourly price for every started hour.

Hour ``k`` of a server starts at ``created_at + k hours``. The job charges, per server, all
hours that have started (up to its deletion) and are not charged yet, then moves
``billed_hours``/``next_charge_at`` on, all in one transaction that holds the server's row
lock; a unique key on (server, hour) is the backstop. So every server-hour is charged
exactly once, however late the job runs (it catches up) and however many workers run it.

Hours a server spends suspended are recorded at zero price; a server whose creation failed
pays nothing. A deleted server pays for the hours started before its deletion, at least one.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vpsorg.accounts import suspension
from vpsorg.accounts.models import Account
from vpsorg.accounts.service import add_credit, hourly_cost_micros, lock_account
from vpsorg.billing.models import ServerCharge
from vpsorg.clock import utcnow
from vpsorg.db import transaction
from vpsorg.servers.models import Server, ServerStatus

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)


def hours_started(created_at: datetime, until: datetime, deleted: bool) -> int:
    """How many of the server's hours have started by ``until``."""
    elapsed = (until - created_at).total_seconds() / 3600
    if deleted:
        return max(1, math.ceil(elapsed))
    return math.floor(elapsed) + 1


async def charge_due_hours(sessions: async_sessionmaker[AsyncSession], batch: int = 200) -> int:
    """Charge every server-hour that is due. Returns the number of hours charged."""
    now = utcnow()
    async with transaction(sessions) as session:
        due = await session.scalars(
            select(Server.id)
            .where(
                Server.next_charge_at <= now,
                or_(Server.deleted_at.is_(None), Server.next_charge_at < Server.deleted_at),
            )
            .order_by(Server.next_charge_at)
            .limit(batch)
        )
        server_ids = list(due.all())
    charged = 0
    for server_id in server_ids:
        async with transaction(sessions) as session:
            charged += await _charge_server(session, server_id, now)
    async with transaction(sessions) as session:
        await _sweep_suspended_accounts(session)
    return charged


async def _charge_server(session: AsyncSession, server_id: int, now: datetime) -> int:
    server = await session.scalar(
        select(Server)
        .where(Server.id == server_id, Server.next_charge_at <= now)
        .with_for_update(skip_locked=True, of=Server)
        .execution_options(populate_existing=True)
    )
    if server is None:  # another worker holds it, or already charged
        return 0
    end = min(now, server.deleted_at) if server.deleted_at else now
    due = hours_started(server.created_at, end, deleted=server.deleted_at is not None)
    first = server.billed_hours
    if due <= first:
        server.next_charge_at = server.created_at + first * HOUR
        return 0
    rate = _hourly_rate(server)
    entry_id = None
    if rate:
        entry = await add_credit(
            session, server.account_id, -rate * (due - first), kind="charge",
            memo=f"server {server.id} ({server.name}), hours {first + 1}-{due}",
        )  # fmt: skip
        entry_id = entry.id
    for hour in range(first, due):
        session.add(
            ServerCharge(
                server_id=server.id, account_id=server.account_id, hour=hour,
                amount_micros=rate, credit_entry_id=entry_id,
            )
        )  # fmt: skip
    server.billed_hours = due
    server.next_charge_at = server.created_at + due * HOUR
    await session.flush()
    return due - first


def _hourly_rate(server: Server) -> int:
    if server.status == ServerStatus.SUSPENDED:
        return 0
    if server.provisioned_at is None and server.status in (
        ServerStatus.ERROR,
        ServerStatus.DELETED,
    ):
        return 0
    return hourly_cost_micros(server.plan, server.backups_enabled)


async def _sweep_suspended_accounts(session: AsyncSession) -> None:
    """Catch servers that were busy when their account was suspended."""
    accounts = await session.scalars(
        select(Account.id)
        .join(Server, Server.account_id == Account.id)
        .where(
            Account.suspended_at.is_not(None),
            Server.deleted_at.is_(None),
            Server.status.in_([ServerStatus.ACTIVE, ServerStatus.STOPPED]),
        )
        .distinct()
    )
    for account_id in accounts.all():
        account = await lock_account(session, account_id)
        if account.suspended_at is not None:
            await suspension.suspend_servers(session, account)
