"""Prepaid server-hours: the first at create, each later one as it starts, exactly once,
at the price in force when it starts, at most 730 hours' worth per calendar month."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import func, select

from tests.billing.conftest import T0, hours_of, ledger_and_balance
from tests.statements import recorded_statements
from vpsorg.accounts.models import CreditEntry
from vpsorg.accounts.service import to_micros
from vpsorg.actions.models import Action
from vpsorg.billing import service as billing
from vpsorg.billing.metering import charge_due_hours
from vpsorg.billing.models import ServerCharge
from vpsorg.db import create_engine, session_factory, transaction
from vpsorg.servers.models import Server

RATE = 30_000  # plan 1, micro-credits per hour
RATE_WITH_BACKUPS = 36_000
PLAN_1 = {"plan_id": 1, "backups_enabled": False}
BODY = {"name": "web", "plan_id": 1, "os_id": 5, "location": "us-west", "backups_enabled": False}


async def _count(sessions, model, account_id: int) -> int:
    async with transaction(sessions) as session:
        query = select(func.count()).select_from(model).where(model.account_id == account_id)
        return int(await session.scalar(query) or 0)


async def test_one_hour_of_credit_creates_one_server_and_the_rest_write_nothing(
    client, app, factory
):
    """Finding 1: 0.03 credits created ten servers. Now the first create pays hour 1."""
    sessions = app.state.runtime.sessions
    user = await factory.account(credits=0.03)

    statuses = []
    for n in range(10):
        response = await client.post(
            "/api/v1/servers/", json={**BODY, "name": f"s{n}"}, headers=user.headers
        )
        statuses.append((response.status_code, response.json().get("code")))

    assert statuses[0][0] == 201
    assert statuses[1:] == [(402, "insufficient_credits")] * 9
    refused = (await client.post("/api/v1/servers/", json=BODY, headers=user.headers)).json()
    assert "first hour costs 0.0300 credits" in refused["detail"]
    assert await factory.balance(user) == 0
    assert await _count(sessions, Server, user.account_id) == 1
    assert await _count(sessions, Action, user.account_id) == 1
    ledger = (await client.get("/api/v1/account/credits/", headers=user.headers)).json()
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in ledger["results"]] == [
        ("charge", -0.03, 0.0),
        ("topup", 0.03, 0.03),
    ]
    account = (await client.get("/api/v1/account/", headers=user.headers)).json()
    assert (account["suspended"], account["servers_used"]) == (False, 1)


async def test_each_started_hour_is_charged_once_however_late_the_meter(app, user, factory, frozen):
    sessions = app.state.runtime.sessions
    before = await factory.balance(user)
    server = await factory.server(user)  # backups on: 0.036/h
    assert [h.hour for h in await hours_of(sessions, server["id"])] == [0]
    assert await factory.balance(user) == before - RATE_WITH_BACKUPS

    frozen.advance(hours=5, minutes=30)
    assert await charge_due_hours(sessions) == 5
    assert await charge_due_hours(sessions) == 0

    hours = await hours_of(sessions, server["id"])
    assert [h.starts_at for h in hours] == [T0 + timedelta(hours=n) for n in range(6)]
    assert await factory.balance(user) == before - 6 * RATE_WITH_BACKUPS
    assert len(set(await ledger_and_balance(sessions, user.account_id))) == 1


async def test_racing_runs_and_a_restarted_worker_charge_nothing_twice(
    app, settings, user, factory, frozen
):
    sessions = app.state.runtime.sessions
    servers = [await factory.server(user, name=f"s{n}", **PLAN_1) for n in range(3)]
    start = await factory.balance(user)
    # A second, independent engine: another worker process after a restart.
    other_engine = create_engine(settings.database_url)
    other = session_factory(other_engine)
    try:
        for hours in (3, 7, 10):
            frozen.at(T0 + timedelta(hours=hours, minutes=1))
            await asyncio.gather(
                charge_due_hours(sessions), charge_due_hours(other), charge_due_hours(sessions)
            )
    finally:
        await other_engine.dispose()

    for server in servers:
        assert [h.hour for h in await hours_of(sessions, server["id"])] == list(range(11))
    assert await factory.balance(user) == start - 3 * 10 * RATE
    assert len(set(await ledger_and_balance(sessions, user.account_id))) == 1


async def test_deleted_server_pays_the_hours_started_before_deletion_only(
    client, app, user, factory, frozen
):
    sessions = app.state.runtime.sessions
    server = await factory.server(user, **PLAN_1)
    frozen.advance(hours=2, minutes=10)
    await client.delete(f"/api/v1/servers/{server['id']}/", headers=user.headers)

    frozen.advance(hours=30)  # the meter ran late: hours 1 and 2 are still owed
    await charge_due_hours(sessions)
    await charge_due_hours(sessions)

    assert [h.hour for h in await hours_of(sessions, server["id"])] == [0, 1, 2]


async def test_a_failed_create_gets_its_first_hour_back(client, app, factory):
    sessions = app.state.runtime.sessions
    user = await factory.account(credits=1)
    app.state.runtime.driver.inject_fault("create", "no room on the host")

    created = (await client.post("/api/v1/servers/", json=BODY, headers=user.headers)).json()
    action = await client.get(f"/api/v1/actions/{created['action']['id']}/?wait=10",
                              headers=user.headers)  # fmt: skip

    assert action.json()["status"] == "error"
    ledger = (await client.get("/api/v1/account/credits/", headers=user.headers)).json()
    assert [(e["kind"], e["amount"]) for e in ledger["results"]] == [
        ("refund", 0.03), ("charge", -0.03), ("topup", 1.0),
    ]  # fmt: skip
    assert await factory.balance(user) == to_micros(1)
    await charge_due_hours(sessions)
    account = (await client.get("/api/v1/account/", headers=user.headers)).json()
    assert (account["balance"], account["hourly_burn_rate"]) == (1.0, 0.0)


async def test_a_backups_change_applies_from_the_next_hour(client, app, user, factory, frozen):
    sessions = app.state.runtime.sessions
    server = await factory.server(user, **PLAN_1)
    frozen.advance(hours=1, minutes=30)  # hour 2 started at T0+1h, not yet metered

    response = await client.patch(f"/api/v1/servers/{server['id']}/",
                                  json={"backups_enabled": True}, headers=user.headers)  # fmt: skip
    assert response.status_code == 200
    frozen.advance(hours=1)
    await charge_due_hours(sessions)

    amounts = [h.amount for h in await hours_of(sessions, server["id"])]
    assert amounts == [RATE, RATE, RATE_WITH_BACKUPS]


async def test_a_price_change_applies_from_the_next_hour_even_to_a_late_meter(
    client, app, user, factory, frozen
):
    sessions = app.state.runtime.sessions
    server = await factory.server(user, **PLAN_1)
    frozen.advance(hours=2, minutes=30)
    async with transaction(sessions) as session:
        await billing.set_plan_price(session, 1, 60_000)
    frozen.advance(hours=2)
    await charge_due_hours(sessions)

    amounts = [h.amount for h in await hours_of(sessions, server["id"])]
    assert amounts == [RATE, RATE, RATE, 60_000, 60_000]
    plans = (await client.get("/api/v1/plans/", headers=user.headers)).json()["results"]
    assert next(p for p in plans if p["id"] == 1)["price_monthly"] == 43.8


async def test_a_server_pays_at_most_price_monthly_per_calendar_month(
    client, app, user, factory, frozen
):
    """Finding 4: price_monthly (730 hours) was published but never applied."""
    sessions = app.state.runtime.sessions
    frozen.at(datetime(2030, 1, 1, 0, 0))
    server = await factory.server(user, **PLAN_1)

    frozen.at(datetime(2030, 2, 1, 0, 30))  # January has 744 hours; the meter catches up
    await charge_due_hours(sessions)

    hours = await hours_of(sessions, server["id"])
    january = [h.amount for h in hours if h.starts_at.month == 1]
    assert len(january) == 744
    assert sum(january) == 730 * RATE  # 21.90, the plan's price_monthly
    assert january[729] == RATE and january[730:] == [0] * 14
    assert [h.amount for h in hours if h.starts_at.month == 2] == [RATE]
    plans = (await client.get("/api/v1/plans/", headers=user.headers)).json()["results"]
    assert next(p for p in plans if p["id"] == 1)["price_monthly"] == 730 * RATE / 1e6


async def test_a_create_first_charges_the_hours_a_late_meter_left(client, app, factory, frozen):
    """A create settles the account before it checks the balance: the hours that started
    since the last settlement are charged first, and then the new server's first hour."""
    sessions = app.state.runtime.sessions
    user = await factory.account(credits=0.1)
    first = await client.post("/api/v1/servers/", json=BODY, headers=user.headers)
    assert first.status_code == 201, first.text

    frozen.advance(hours=2, minutes=10)  # hours 2 and 3 of the first server have started
    second = await client.post(
        "/api/v1/servers/", json={**BODY, "name": "web2"}, headers=user.headers
    )
    assert second.status_code == 402, second.text  # 0.1 - 3 * 0.03 = 0.01 left: refused
    assert [h.hour for h in await hours_of(sessions, first.json()["id"])] == [0]  # rolled back

    async with transaction(sessions) as session:
        await billing.credit(session, user.account_id, to_micros(0.02))
    # The credit settled the two hours (0.1 - 0.09 + 0.02 = 0.03): now exactly one more hour.
    third = await client.post(
        "/api/v1/servers/", json={**BODY, "name": "web3"}, headers=user.headers
    )
    assert third.status_code == 201, third.text
    assert [h.hour for h in await hours_of(sessions, first.json()["id"])] == [0, 1, 2]
    assert [h.starts_at for h in await hours_of(sessions, third.json()["id"])] == [frozen.now]
    assert await factory.balance(user) == 0
    assert len(set(await ledger_and_balance(sessions, user.account_id))) == 1


async def test_a_create_settles_due_hours_in_its_own_transaction(client, app, factory, frozen):
    sessions = app.state.runtime.sessions
    user = await factory.account(credits=1)
    first = await client.post("/api/v1/servers/", json=BODY, headers=user.headers)
    frozen.advance(hours=1, minutes=1)  # hour 2 of the first server started; no meter ran

    second = await client.post(
        "/api/v1/servers/", json={**BODY, "name": "web2"}, headers=user.headers
    )

    assert second.status_code == 201, second.text
    assert [h.hour for h in await hours_of(sessions, first.json()["id"])] == [0, 1]
    assert [h.hour for h in await hours_of(sessions, second.json()["id"])] == [0]
    assert await factory.balance(user) == to_micros(1) - 3 * RATE
    assert len(set(await ledger_and_balance(sessions, user.account_id))) == 1


async def test_each_hour_charged_has_its_ledger_line_and_one_statement_on_postgresql(
    client, app, user, frozen, databases
):
    """A create's first hour and a metered hour: the row points at its line, the line's
    balance is the account's; on PostgreSQL each is booked by one statement (one WITH)."""
    runtime = app.state.runtime
    with recorded_statements(runtime) as statements:
        created = await client.post("/api/v1/servers/", json=BODY, headers=user.headers)
        assert created.status_code == 201
        frozen.advance(hours=1)
        assert await charge_due_hours(runtime.sessions) == 1

    async with transaction(runtime.sessions) as session:
        rows = await session.execute(
            select(ServerCharge, CreditEntry)
            .join(CreditEntry, CreditEntry.id == ServerCharge.credit_entry_id)
            .where(ServerCharge.server_id == created.json()["id"])
            .order_by(ServerCharge.hour)
        )
        booked = [
            (c.hour, c.amount_micros, e.amount_micros, e.kind, e.memo, c.created_at == e.created_at)
            for c, e in rows
        ]
    memo = f"server {created.json()['id']} (web), hour"
    assert booked == [
        (0, RATE, -RATE, "charge", f"{memo} 1", True),
        (1, RATE, -RATE, "charge", f"{memo} 2", True),
    ]
    total, balance = await ledger_and_balance(runtime.sessions, user.account_id)
    assert total == balance == to_micros(100) - 2 * RATE
    ledger_writes = [s for s in statements if "INSERT INTO credit_entries" in s]
    if databases.is_postgres:
        assert len(ledger_writes) == 2, ledger_writes
        assert all(s.startswith("WITH") and "server_charges" in s for s in ledger_writes)
        assert not [s for s in statements if s.startswith("UPDATE accounts SET balance")]
    else:
        assert [s.split()[:3] for s in ledger_writes] == [["INSERT", "INTO", "credit_entries"]] * 2
