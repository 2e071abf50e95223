"""bandwidth_used: the interface counter's increments, summed over the calendar month."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import update

from vpsorg.clock import set_clock
from vpsorg.db import transaction
from vpsorg.drivers.base import Usage
from vpsorg.servers.lifecycle import usage_values
from vpsorg.servers.models import Server

GB = 1_000_000_000


@pytest.fixture
def month() -> Iterator[list[datetime]]:
    now = [datetime(2026, 11, 20, 12, 0)]
    set_clock(lambda: now[0])
    yield now
    set_clock(None)


async def sample(app, server_id: int, network_bytes: int) -> None:
    usage = Usage(cpu_percent=5.0, memory_used_mb=100, disk_used_gb=1, network_bytes=network_bytes)
    async with transaction(app.state.runtime.sessions) as session:
        await session.execute(
            update(Server).where(Server.id == server_id).values(**usage_values(usage))
        )


async def test_counter_increments_add_up_across_reboots_and_reset_monthly(
    app, factory, user, month
):
    server = await factory.server(user)
    used = []

    async def bandwidth_used() -> int:
        response = await factory.client.get(
            f"/api/v1/servers/{server['id']}/", headers=user.headers
        )
        return int(response.json()["resource_usage"]["bandwidth_used"])

    for counter in (3 * GB, 5 * GB, 1 * GB, int(2.5 * GB)):  # the third sample is after a reboot
        await sample(app, server["id"], counter)
        used.append(await bandwidth_used())
    month[0] = datetime(2026, 12, 1, 0, 5)
    await sample(app, server["id"], int(4.5 * GB))
    used.append(await bandwidth_used())

    # +3, +2, +1 (counter restarted), +1.5 -> 7.5 GB; December counts only its own +2 GB.
    assert used == [3, 5, 6, 7, 2]
