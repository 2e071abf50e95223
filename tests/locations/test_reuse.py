"""A deleted server's addresses go back to their range and are handed out first."""

from __future__ import annotations

from tests.factories import SERVER
from tests.locations.test_ipam import add_location

BODY = {**SERVER, "plan_id": 3, "backups_enabled": False}


async def test_a_deleted_servers_addresses_are_reused_first(app, client, user, factory):
    await add_location(app, "reuse", "10.50.0.0/29", "fd00:50::/64")
    first = await factory.server(user, **{**BODY, "location": "reuse", "name": "a"})
    second = await factory.server(user, **{**BODY, "location": "reuse", "name": "b"})
    deleted = await client.delete(f"/api/v1/servers/{first['id']}/", headers=user.headers)
    assert deleted.status_code == 204
    await _until_deleted(app, first["id"])

    third = await factory.server(user, **{**BODY, "location": "reuse", "name": "c"})
    fourth = await factory.server(user, **{**BODY, "location": "reuse", "name": "d"})

    assert (first["ip_address"], first["ipv6_address"]) == ("10.50.0.2", "fd00:50::2")
    assert second["ip_address"] == "10.50.0.3"
    assert (third["ip_address"], third["ipv6_address"]) == ("10.50.0.2", "fd00:50::2")
    assert fourth["ip_address"] == "10.50.0.4"  # then the cursor again


async def _until_deleted(app, server_id: int) -> None:
    import asyncio
    import time

    from vpsorg.db import transaction
    from vpsorg.servers.models import Server

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with transaction(app.state.runtime.sessions) as session:
            server = await session.get(Server, server_id)
            if server is not None and server.status == "deleted":
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"server {server_id} was never deleted")
