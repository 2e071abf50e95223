"""The meter: a periodic job in every worker that settles every account with hours due.

Settling (``billing/service.py``) charges each server-hour that has started, oldest first,
under the account's row lock, and moves the server's ``billed_hours``/``next_charge_at`` on;
a unique key on (server, hour) is the backstop. So every server-hour is charged exactly once,
however late the job runs (it catches up to what an on-time meter would have charged) and
however many workers run it.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vpsorg.accounts.service import lock_account
from vpsorg.billing import repository, service
from vpsorg.clock import utcnow
from vpsorg.db import transaction
from vpsorg.observability import metrics

log = logging.getLogger(__name__)


async def charge_due_hours(sessions: async_sessionmaker[AsyncSession], batch: int = 200) -> int:
    """Charge every server-hour that is due. Returns the number of hours charged."""
    now = utcnow()
    async with transaction(sessions) as session:
        account_ids = await repository.accounts_with_due_hours(session, now, batch)
    charged = 0
    for account_id in account_ids:
        async with transaction(sessions) as session:
            account = await lock_account(session, account_id)
            charged += await service.settle(session, account, now)
    async with transaction(sessions) as session:
        await service.sweep_suspended_accounts(session)
    metrics.METERING_RUNS.inc()
    metrics.HOURS_CHARGED.inc(charged)
    return charged
