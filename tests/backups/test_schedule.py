"""Automatic backups: one per interval at the server's offset, the latest 7 kept, and all of
them gone `backup_retention` days after backups are turned off."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from tests.backups.conftest import backups_of
from tests.billing.conftest import frozen  # noqa: F401 - the fixture
from vpsorg.backups import scheduler


async def _settled(client, user, server_id: int) -> list[dict]:
    for _ in range(500):
        listed = await backups_of(client, user, server_id)
        if all(b["status"] == "available" for b in listed):
            return listed
        await asyncio.sleep(0.02)
    raise AssertionError(f"backups never became available: {listed}")


def test_each_server_has_its_own_slot_in_the_interval():
    day = 86_400.0
    offsets = {scheduler.offset_seconds(server_id, day) for server_id in range(1, 101)}
    assert len(offsets) == 100  # spread, not all at midnight
    now = datetime(2030, 1, 5, 13, 0)
    start = scheduler.slot_start(7, day, now)
    assert now - timedelta(days=1) < start <= now
    assert scheduler.is_due(7, start - timedelta(seconds=1), None, day, now)
    assert not scheduler.is_due(7, start - timedelta(seconds=1), start, day, now)
    assert not scheduler.is_due(7, start + timedelta(seconds=1), None, day, now)


async def test_backups_are_taken_daily_kept_seven_and_pruned_after_turning_off(
    client,
    user,
    factory,
    app,
    frozen,  # noqa: F811
):
    runtime = app.state.runtime
    settings = runtime.settings
    server = await factory.server(user, backups_enabled=True)
    no_backups = await factory.server(user, name="plain", backups_enabled=False)

    assert await scheduler.run(runtime.sessions, settings) == 0  # built just now: not due
    for day in range(1, 11):
        frozen.advance(days=1)
        await scheduler.run(runtime.sessions, settings)
        assert await scheduler.run(runtime.sessions, settings) == 0  # once per interval
        listed = await _settled(client, user, server["id"])
        assert len(listed) == min(day, 7), day
    assert {b["kind"] for b in listed} == {"backup"}
    assert await backups_of(client, user, no_backups["id"]) == []
    newest = max(b["created_at"] for b in listed)

    response = await client.patch(
        f"/api/v1/servers/{server['id']}/", json={"backups_enabled": False}, headers=user.headers
    )
    assert response.status_code == 200
    frozen.advance(days=6)
    await scheduler.run(runtime.sessions, settings)
    listed = await _settled(client, user, server["id"])
    assert len(listed) == 7 and max(b["created_at"] for b in listed) == newest  # none new
    frozen.advance(days=1, hours=1)
    await scheduler.run(runtime.sessions, settings)
    assert await backups_of(client, user, server["id"]) == []
    driver = runtime.driver
    for _ in range(500):
        if not driver.backups():
            break
        await asyncio.sleep(0.02)
    assert driver.backups() == []
