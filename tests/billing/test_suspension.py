"""Running out of credits suspends; a top-up that covers an hour of every server lifts it.
Nothing is deleted, and nothing runs free."""

from __future__ import annotations

from datetime import timedelta

from tests.billing.conftest import T0, hours_of, ledger_and_balance, suspended_at
from vpsorg.accounts.models import Account
from vpsorg.accounts.service import to_micros
from vpsorg.billing import service as billing
from vpsorg.billing.metering import charge_due_hours
from vpsorg.db import transaction

STARTER = {"plan_id": 3, "backups_enabled": False}  # 0.0075 per hour
STARTER_RATE = 7_500
DEDICATED = {"name": "big", "plan_id": 6, "os_id": 5, "location": "us-west",
             "backups_enabled": False}  # fmt: skip  # 0.18 per hour


async def _credit(app, user, credits: float) -> None:
    async with transaction(app.state.runtime.sessions) as session:
        await billing.credit(session, user.account_id, to_micros(credits))


async def _account(client, user) -> dict:
    return (await client.get("/api/v1/account/", headers=user.headers)).json()


async def test_account_endpoint_shows_balance_burn_rate_and_limit(client, user, factory):
    await factory.server(user, backups_enabled=False)
    await factory.server(user, name="two", plan_id=2, backups_enabled=True)

    body = await _account(client, user)

    assert body["balance"] == round(100 - 0.03 - 0.072, 6)
    assert body["hourly_burn_rate"] == 0.03 + 0.072
    assert (body["servers_limit"], body["servers_used"]) == (10, 2)
    assert (body["suspended"], body["suspended_reason"]) == (False, None)


async def test_servers_limit_is_403_naming_the_limit(client, app, user, factory):
    async with transaction(app.state.runtime.sessions) as session:
        (await session.get(Account, user.account_id)).servers_limit = 2
    await factory.server(user, name="a", wait=None)
    await factory.server(user, name="b", wait=None)

    response = await client.post(
        "/api/v1/servers/", json={"name": "c", "plan_id": 1, "os_id": 5, "location": "us-west"},
        headers=user.headers,
    )  # fmt: skip

    assert response.status_code == 403
    assert response.json()["code"] == "limit_exceeded"
    assert "limit is 2" in response.json()["detail"]
    assert (await client.get("/api/v1/servers/", headers=user.headers)).json()["count"] == 2


async def test_expensive_servers_cannot_outrun_the_balance(client, app, factory, frozen):
    """Finding 2: 0.18 credits ran ten 'Dedicated CPU' servers (1.80/h) and paid 0.36."""
    sessions = app.state.runtime.sessions
    user = await factory.account(credits=0.18)
    codes = [
        (await client.post("/api/v1/servers/", json=DEDICATED, headers=user.headers)).status_code
        for _ in range(10)
    ]
    assert codes == [201] + [402] * 9

    frozen.advance(hours=1)  # hour 2 starts: charged in full, and the account is suspended
    await charge_due_hours(sessions)
    frozen.advance(hours=5)
    await charge_due_hours(sessions)

    account = await _account(client, user)
    assert (account["balance"], account["suspended"]) == (-0.18, True)
    assert account["suspended_reason"] == "insufficient credits"
    assert await suspended_at(sessions, user.account_id) == T0 + timedelta(hours=1)


async def test_a_late_meter_suspends_at_the_hour_that_ran_out(client, app, factory, frozen):
    sessions = app.state.runtime.sessions
    user = await factory.account(credits=0.05)  # 0.015 at create, then 0.015 an hour
    first = await factory.server(user, name="first", **STARTER)
    frozen.advance(minutes=20)
    second = await factory.server(user, name="second", **STARTER)

    frozen.advance(hours=10)  # nobody metered for ten hours
    await charge_due_hours(sessions)

    # 0.05 - 2 x 0.0075 = 0.035 after the creates; T0+1h: 0.0275, T0+1h20: 0.02, T0+2h: 0.0125,
    # T0+2h20: 0.005, T0+3h: -0.0025: suspended there. The second's T0+3h20 hour is free.
    assert [h.starts_at for h in await hours_of(sessions, first["id"])] == [
        T0 + timedelta(hours=n) for n in range(4)
    ]
    assert len(await hours_of(sessions, second["id"])) == 3
    assert await suspended_at(sessions, user.account_id) == T0 + timedelta(hours=3)
    assert await factory.balance(user) == to_micros(-0.0025)
    assert len(set(await ledger_and_balance(sessions, user.account_id))) == 1


async def test_suspension_and_recovery_end_to_end(client, app, factory, frozen):
    sessions = app.state.runtime.sessions
    user = await factory.account(credits=0.02)
    running = await factory.server(user, name="running", **STARTER)
    stopped = await factory.server(user, name="stopped", **STARTER)
    await client.post(f"/api/v1/servers/{stopped['id']}/stop/", headers=user.headers)
    await factory.wait_for(user, stopped["id"], "stopped")

    frozen.advance(hours=1, minutes=1)
    await charge_due_hours(sessions)  # 0.005 - 2 x 0.0075 < 0
    app.state.runtime.wake_worker()

    account = await _account(client, user)
    assert (account["suspended"], account["suspended_reason"]) == (True, "insufficient credits")
    assert account["balance"] == -0.01
    assert account["hourly_burn_rate"] == 0.015  # what lifting the suspension needs
    for server in (running, stopped):
        assert (await factory.wait_for(user, server["id"], "suspended"))["status"] == "suspended"
    history = (await client.get(f"/api/v1/servers/{running['id']}/actions/",
                                headers=user.headers)).json()["results"]  # fmt: skip
    assert history[0]["command"] == "suspend"
    for command in ("start", "stop", "reboot"):
        response = await client.post(
            f"/api/v1/servers/{running['id']}/{command}/", headers=user.headers
        )
        assert (response.status_code, response.json()["code"]) == (402, "account_suspended")
    create = await client.post(
        "/api/v1/servers/", json={"name": "more", "plan_id": 3, "os_id": 5, "location": "us-west"},
        headers=user.headers,
    )  # fmt: skip
    assert (create.status_code, create.json()["code"]) == (402, "account_suspended")

    # Finding 3: a top-up of 0.05 used to lift it and the servers ran free to the hour's end.
    # Now 0.02 (balance 0.01) is credited but does not cover the 0.015 an hour costs.
    frozen.advance(hours=3)
    await _credit(app, user, 0.02)
    assert (await _account(client, user))["suspended"] is True
    assert [len(await hours_of(sessions, s["id"])) for s in (running, stopped)] == [2, 2]

    lifted_at = frozen.advance(minutes=17)
    await _credit(app, user, 0.005)  # balance 0.015: exactly an hour of both

    account = await _account(client, user)
    assert (account["suspended"], account["balance"]) == (False, 0.0)
    for server in (running, stopped):
        hours = await hours_of(sessions, server["id"])
        assert (hours[-1].hour, hours[-1].starts_at) == (2, lifted_at)  # a new hour, paid now
        body = (await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)).json()
        assert body["status"] == "stopped"
    restart = await client.post(f"/api/v1/servers/{running['id']}/start/", headers=user.headers)
    assert restart.status_code == 200
    await factory.wait_for(user, running["id"], "active")

    frozen.advance(minutes=59)
    assert await charge_due_hours(sessions) == 0  # the next hour starts at lifted_at + 1h
    frozen.advance(minutes=1)
    assert await charge_due_hours(sessions) == 2
    assert (await _account(client, user))["suspended"] is True  # 0 - 0.015 < 0
    assert len(set(await ledger_and_balance(sessions, user.account_id))) == 1


async def test_an_operator_suspension_is_not_lifted_by_a_top_up(client, app, user, factory):
    server = await factory.server(user)
    async with transaction(app.state.runtime.sessions) as session:
        await billing.suspend_account(session, user.account_id, "abuse")
        await billing.credit(session, user.account_id, to_micros(10))

    body = await _account(client, user)
    assert (body["suspended"], body["suspended_reason"]) == (True, "abuse")
    response = await client.post(f"/api/v1/servers/{server['id']}/reboot/", headers=user.headers)
    assert response.status_code == 402


async def test_unsuspending_without_credit_leaves_a_credits_suspension(
    client, app, factory, frozen
):
    sessions = app.state.runtime.sessions
    user = await factory.account(credits=0.01)
    server = await factory.server(user, **STARTER)
    async with transaction(sessions) as session:
        await billing.suspend_account(session, user.account_id, "abuse")
        await billing.credit(session, user.account_id, -to_micros(0.0050))  # correction
    async with transaction(sessions) as session:
        lifted = await billing.unsuspend_account(session, user.account_id)

    assert lifted is False  # balance -0.0025 < 0.0075
    body = await _account(client, user)
    assert (body["suspended"], body["suspended_reason"]) == (True, "insufficient credits")

    frozen.advance(hours=1)
    await _credit(app, user, 0.01)  # now 0.0075: lifted, and the new hour paid at once
    body = await _account(client, user)
    assert (body["suspended"], body["balance"]) == (False, 0.0)
    assert [h.amount for h in await hours_of(sessions, server["id"])] == [STARTER_RATE] * 2


async def test_ledger_lists_top_ups_and_charges(client, app, user, factory, frozen):
    await factory.server(user, backups_enabled=False)
    frozen.advance(hours=1)
    await charge_due_hours(app.state.runtime.sessions)

    ledger = (await client.get("/api/v1/account/credits/", headers=user.headers)).json()

    assert [e["kind"] for e in ledger["results"]] == ["charge", "charge", "topup"]
    assert [e["memo"] for e in ledger["results"][:2]] == [
        "server 1 (web-server-02), hour 2", "server 1 (web-server-02), hour 1",
    ]  # fmt: skip
    assert ledger["results"][0]["amount"] == -0.03
    assert ledger["results"][0]["balance_after"] == 99.94


async def test_a_power_action_settles_first_so_a_late_meter_lets_nothing_through(
    client, app, factory, frozen
):
    """Found by the billing model: credits ran out two hours ago and no meter has run since."""
    user = await factory.account(credits=0.01)
    server = await factory.server(user, **STARTER)
    frozen.advance(hours=2, minutes=56)

    response = await client.post(f"/api/v1/servers/{server['id']}/stop/", headers=user.headers)

    assert (response.status_code, response.json()["code"]) == (402, "account_suspended")
    sessions = app.state.runtime.sessions
    await charge_due_hours(sessions)  # a refusal writes nothing; the meter records it
    assert await suspended_at(sessions, user.account_id) == T0 + timedelta(hours=1)


async def test_an_operator_unsuspend_settles_first(client, app, factory, frozen):
    """Found by the billing model: credits ran out while no meter ran, a power request was
    refused (writing nothing), then an operator lifted the account: the hours due must be
    charged first, and they leave it suspended for credits."""
    sessions = app.state.runtime.sessions
    user = await factory.account(credits=0.01)
    server = await factory.server(user, **STARTER)  # first hour paid: 0.0025 left
    frozen.advance(hours=2, minutes=56)
    refused = await client.post(f"/api/v1/servers/{server['id']}/stop/", headers=user.headers)
    assert refused.status_code == 402

    async with transaction(sessions) as session:
        lifted = await billing.unsuspend_account(session, user.account_id)

    assert lifted is False
    body = await _account(client, user)
    assert (body["suspended"], body["suspended_reason"]) == (True, "insufficient credits")
    assert [h.amount for h in await hours_of(sessions, server["id"])] == [STARTER_RATE] * 2
    assert await suspended_at(sessions, user.account_id) == T0 + timedelta(hours=1)
