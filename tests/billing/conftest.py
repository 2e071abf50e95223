"""A clock tests move by hand, and readers of what an account and its servers have paid."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vpsorg import clock
from vpsorg.accounts.models import Account, CreditEntry
from vpsorg.billing.models import ServerCharge
from vpsorg.db import transaction

T0 = datetime(2030, 1, 1, 12, 0, 0)


class Clock:
    """What ``vpsorg.clock.utcnow()`` answers while a test holds it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def at(self, moment: datetime) -> datetime:
        self.now = moment
        return moment


@pytest.fixture
def frozen() -> Iterator[Clock]:
    held = Clock(T0)
    clock.set_clock(lambda: held.now)
    yield held
    clock.set_clock(None)


@dataclass(frozen=True)
class Hour:
    hour: int
    starts_at: datetime
    amount: int


async def hours_of(sessions: async_sessionmaker[AsyncSession], server_id: int) -> list[Hour]:
    """The server's charged hours, in order."""
    async with transaction(sessions) as session:
        rows = await session.scalars(
            select(ServerCharge)
            .where(ServerCharge.server_id == server_id)
            .order_by(ServerCharge.hour)
        )
        return [Hour(c.hour, c.starts_at, c.amount_micros) for c in rows.all()]


async def ledger_and_balance(
    sessions: async_sessionmaker[AsyncSession], account_id: int
) -> tuple[int, int]:
    """(sum of the ledger, stored balance): they must always agree."""
    async with transaction(sessions) as session:
        total = await session.scalar(
            select(func.sum(CreditEntry.amount_micros)).where(CreditEntry.account_id == account_id)
        )
        account = await session.get(Account, account_id)
        assert account is not None
        return int(total or 0), account.balance_micros


async def suspended_at(
    sessions: async_sessionmaker[AsyncSession], account_id: int
) -> datetime | None:
    async with transaction(sessions) as session:
        account = await session.get(Account, account_id)
        assert account is not None
        return account.suspended_at
