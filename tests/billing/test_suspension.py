"""Running out of credits suspends; topping up recovers. Nothing is deleted."""

from __future__ import annotations

from datetime import timedelta

from vpsorg import clock
from vpsorg.accounts.service import add_credit, to_micros
from vpsorg.billing.metering import charge_due_hours
from vpsorg.db import transaction

STARTER = {"plan_id": 3, "backups_enabled": False}  # 0.0075 per hour


async def test_account_endpoint_shows_balance_burn_rate_and_limit(client, user, factory):
    await factory.server(user, backups_enabled=False)
    await factory.server(user, name="two", plan_id=2, backups_enabled=True)

    body = (await client.get("/api/v1/account/", headers=user.headers)).json()

    assert body["balance"] == 100.0
    assert body["hourly_burn_rate"] == 0.03 + 0.072
    assert (body["servers_limit"], body["servers_used"]) == (10, 2)
    assert (body["suspended"], body["suspended_reason"]) == (False, None)


async def test_servers_limit_is_403_naming_the_limit(client, app, user, factory):
    async with transaction(app.state.runtime.sessions) as session:
        from vpsorg.accounts.models import Account

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


async def test_suspension_and_recovery_end_to_end(client, app, factory):
    sessions = app.state.runtime.sessions
    user = await factory.account(credits=0.02)
    running = await factory.server(user, name="running", **STARTER)
    stopped = await factory.server(user, name="stopped", **STARTER)
    await client.post(f"/api/v1/servers/{stopped['id']}/stop/", headers=user.headers)
    await factory.wait_for(user, stopped["id"], "stopped")

    later = clock.utcnow() + timedelta(hours=1, minutes=1)
    clock.set_clock(lambda: later)
    try:
        await charge_due_hours(sessions)  # 2 servers x 2 hours x 0.0075 = 0.03 > 0.02
    finally:
        clock.set_clock(None)
    app.state.runtime.wake_worker()

    account = (await client.get("/api/v1/account/", headers=user.headers)).json()
    assert account["suspended"] is True
    assert account["suspended_reason"] == "insufficient credits"
    assert account["balance"] < 0
    for server in (running, stopped):
        assert (await factory.wait_for(user, server["id"], "suspended"))["status"] == "suspended"
    history = (await client.get(f"/api/v1/servers/{running['id']}/actions/",
                                headers=user.headers)).json()["results"]  # fmt: skip
    assert history[0]["command"] == "suspend"
    assert await app.state.runtime.driver.state(f"vps-{running['id']}") in ("running", "stopped")

    for command in ("start", "stop", "reboot"):
        response = await client.post(
            f"/api/v1/servers/{running['id']}/{command}/", headers=user.headers
        )
        assert response.status_code == 402
        assert response.json()["code"] == "account_suspended"
    create = await client.post(
        "/api/v1/servers/", json={"name": "more", "plan_id": 3, "os_id": 5, "location": "us-west"},
        headers=user.headers,
    )  # fmt: skip
    assert create.status_code == 402

    async with transaction(sessions) as session:
        await add_credit(session, user.account_id, to_micros(5), kind="topup")

    for server in (running, stopped):
        assert (await client.get(f"/api/v1/servers/{server['id']}/",
                                 headers=user.headers)).json()["status"] == "stopped"  # fmt: skip
    assert (await client.get("/api/v1/account/", headers=user.headers)).json()["suspended"] is False
    restart = await client.post(f"/api/v1/servers/{running['id']}/start/", headers=user.headers)
    assert restart.status_code == 200
    await factory.wait_for(user, running["id"], "active")
    assert (await client.get("/api/v1/servers/", headers=user.headers)).json()["count"] == 2


async def test_manual_suspension_is_not_lifted_by_a_top_up(client, app, user, factory):
    from vpsorg.accounts import suspension
    from vpsorg.accounts.service import lock_account

    server = await factory.server(user)
    async with transaction(app.state.runtime.sessions) as session:
        await suspension.suspend(session, await lock_account(session, user.account_id), "abuse")
        await add_credit(session, user.account_id, to_micros(10), kind="topup")

    body = (await client.get("/api/v1/account/", headers=user.headers)).json()
    assert (body["suspended"], body["suspended_reason"]) == (True, "abuse")
    response = await client.post(f"/api/v1/servers/{server['id']}/reboot/", headers=user.headers)
    assert response.status_code == 402


async def test_ledger_lists_top_ups_and_charges(client, app, user, factory):
    await factory.server(user, backups_enabled=False)
    await charge_due_hours(app.state.runtime.sessions)

    ledger = (await client.get("/api/v1/account/credits/", headers=user.headers)).json()

    assert [e["kind"] for e in ledger["results"]] == ["charge", "topup"]
    assert ledger["results"][0]["amount"] == -0.03
    assert ledger["results"][0]["balance_after"] == 99.97
