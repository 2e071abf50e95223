"""The worked example of the README's Billing section, step by step, as it is printed there."""

from __future__ import annotations

from datetime import datetime

from tests.billing.conftest import suspended_at
from vpsorg.accounts.service import to_micros
from vpsorg.billing import service as billing
from vpsorg.billing.metering import charge_due_hours
from vpsorg.db import transaction

DAY = datetime(2030, 1, 15)
WEB = {"name": "web", "plan_id": 1, "os_id": 5, "location": "us-west", "backups_enabled": False}
DB = {"name": "db", "plan_id": 1, "os_id": 5, "location": "us-west", "backups_enabled": True}


async def test_the_worked_example(client, app, factory, frozen):
    sessions = app.state.runtime.sessions

    async def at(clock: str) -> None:
        hour, minute = map(int, clock.split(":"))
        frozen.at(DAY.replace(hour=hour, minute=minute))

    async def top_up(credits: float) -> None:
        async with transaction(sessions) as session:
            await billing.credit(session, user.account_id, to_micros(credits))

    async def account() -> tuple[float, bool]:
        body = (await client.get("/api/v1/account/", headers=user.headers)).json()
        return body["balance"], body["suspended"]

    await at("09:00")
    user = await factory.account(credits=0.10)

    async def create(body: dict[str, object]) -> int:
        return (await client.post("/api/v1/servers/", json=body, headers=user.headers)).status_code

    await at("10:00")
    assert await create(WEB) == 201
    await at("10:20")
    assert await create(DB) == 201
    assert await account() == (0.034, False)
    await at("11:25")  # the meter runs late: web's 11:00 hour and db's 11:20 hour
    await charge_due_hours(sessions)
    assert await account() == (-0.032, True)
    assert await suspended_at(sessions, user.account_id) == DAY.replace(hour=11, minute=20)
    await at("12:30")
    assert await charge_due_hours(sessions) == 0  # hours starting while suspended are free
    await at("13:05")
    await top_up(0.05)
    assert await account() == (0.018, True)  # below the burn of 0.066 an hour
    await at("13:30")
    await top_up(0.10)
    assert await account() == (0.052, False)

    ledger = (await client.get("/api/v1/account/credits/", headers=user.headers)).json()
    lines = [
        (e["created_at"][11:16], e["kind"], e["amount"], e["balance_after"], e["memo"])
        for e in ledger["results"]
    ]
    assert lines == [
        ("13:30", "charge", -0.036, 0.052, "server 2 (db), hour 3"),
        ("13:30", "charge", -0.03, 0.088, "server 1 (web), hour 3"),
        ("13:30", "topup", 0.1, 0.118, ""),
        ("13:05", "topup", 0.05, 0.018, ""),
        ("11:25", "charge", -0.036, -0.032, "server 2 (db), hour 2"),
        ("11:25", "charge", -0.03, 0.004, "server 1 (web), hour 2"),
        ("10:20", "charge", -0.036, 0.034, "server 2 (db), hour 1"),
        ("10:00", "charge", -0.03, 0.07, "server 1 (web), hour 1"),
        ("09:00", "topup", 0.1, 0.1, "initial credit"),
    ]
