"""Hourly metering with a controllable clock: every server-hour charged exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from vpsorg import clock
from vpsorg.accounts.models import Account, CreditEntry
from vpsorg.billing.metering import charge_due_hours, hours_started
from vpsorg.billing.models import ServerCharge
from vpsorg.db import create_engine, session_factory, transaction

T0 = datetime(2030, 1, 1, 12, 0, 0)
RATE = 30_000  # plan 1, micro-credits per hour
RATE_WITH_BACKUPS = 36_000


@pytest.fixture
def frozen() -> Iterator[list[datetime]]:
    """The clock reads now[0]; tests move it."""
    now = [T0]
    clock.set_clock(lambda: now[0])
    yield now
    clock.set_clock(None)


async def _charges(sessions, server_id: int) -> list[int]:
    async with transaction(sessions) as session:
        rows = await session.scalars(
            select(ServerCharge.hour)
            .where(ServerCharge.server_id == server_id)
            .order_by(ServerCharge.hour)
        )
        return list(rows.all())


async def _ledger_balances(sessions, account_id: int) -> tuple[int, int]:
    """(sum of ledger entries, stored balance): they must always agree."""
    async with transaction(sessions) as session:
        total = await session.scalar(
            select(func.sum(CreditEntry.amount_micros)).where(CreditEntry.account_id == account_id)
        )
        balance = (await session.get(Account, account_id)).balance_micros
    return int(total or 0), balance


def test_hours_started():
    assert hours_started(T0, T0, deleted=False) == 1
    assert hours_started(T0, T0 + timedelta(minutes=59), deleted=False) == 1
    assert hours_started(T0, T0 + timedelta(hours=1), deleted=False) == 2
    assert hours_started(T0, T0 + timedelta(minutes=5), deleted=True) == 1
    assert hours_started(T0, T0 + timedelta(hours=2), deleted=True) == 2
    assert hours_started(T0, T0 + timedelta(hours=2, seconds=1), deleted=True) == 3


async def test_each_started_hour_is_charged_once_with_catch_up(app, user, factory, frozen):
    sessions = app.state.runtime.sessions
    server = await factory.server(user)  # backups on: 0.036/h
    start = await factory.balance(user)

    frozen[0] = T0 + timedelta(hours=5, minutes=30)
    await charge_due_hours(sessions)
    await charge_due_hours(sessions)

    assert await _charges(sessions, server["id"]) == [0, 1, 2, 3, 4, 5]
    assert await factory.balance(user) == start - 6 * RATE_WITH_BACKUPS
    total, balance = await _ledger_balances(sessions, user.account_id)
    assert total == balance


async def test_racing_runs_and_a_restarted_worker_charge_nothing_twice(
    app, settings, user, factory, frozen
):
    sessions = app.state.runtime.sessions
    servers = [await factory.server(user, name=f"s{n}", backups_enabled=False) for n in range(3)]
    start = await factory.balance(user)
    # A second, independent engine: another worker process after a restart.
    other_engine = create_engine(settings.database_url)
    other = session_factory(other_engine)
    try:
        for hours in (3, 7, 10):
            frozen[0] = T0 + timedelta(hours=hours, minutes=1)
            await asyncio.gather(
                charge_due_hours(sessions), charge_due_hours(other), charge_due_hours(sessions)
            )
    finally:
        await other_engine.dispose()

    for server in servers:
        assert await _charges(sessions, server["id"]) == list(range(11))
    assert await factory.balance(user) == start - 3 * 11 * RATE
    total, balance = await _ledger_balances(sessions, user.account_id)
    assert total == balance


async def test_deleted_server_pays_until_deletion_only(client, app, user, factory, frozen):
    sessions = app.state.runtime.sessions
    server = await factory.server(user, backups_enabled=False)
    frozen[0] = T0 + timedelta(hours=2, minutes=10)
    await charge_due_hours(sessions)
    await client.delete(f"/api/v1/servers/{server['id']}/", headers=user.headers)

    frozen[0] = T0 + timedelta(hours=30)
    await charge_due_hours(sessions)
    await charge_due_hours(sessions)

    assert await _charges(sessions, server["id"]) == [0, 1, 2]


async def test_plans_show_hourly_and_capped_monthly_prices(client, user):
    plans = (await client.get("/api/v1/plans/", headers=user.headers)).json()["results"]
    standard = next(p for p in plans if p["id"] == 1)
    assert standard["price_hourly"] == 0.03
    assert standard["price_monthly"] == 21.9
