"""Placement through the API: which host each new server lands on, and a full location."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from tests.factories import SERVER, Factory, User
from vpsorg.db import transaction
from vpsorg.drivers.base import HostCapacity
from vpsorg.hosts import service as hosts
from vpsorg.servers.models import Server


async def add_host(app: FastAPI, name: str, memory_mb: int, location: str = "us-west") -> int:
    async with transaction(app.state.runtime.sessions) as session:
        host = await hosts.add_host(
            session, name, location, f"test:///{name}", HostCapacity(8, memory_mb, 1000)
        )
        return host.id


async def host_of(app: FastAPI, server_id: int) -> int | None:
    async with transaction(app.state.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        assert server is not None
        return server.host_id


async def create(factory: Factory, user: User, **fields: Any) -> Any:
    return await factory.client.post(
        "/api/v1/servers/", json={**SERVER, **fields}, headers=user.headers
    )


async def test_a_location_without_hosts_uses_the_default_host(app, factory, user):
    await add_host(app, "kvm-east", 65536, location="us-east")

    server = await factory.server(user)

    assert server["status"] == "active"
    assert await host_of(app, server["id"]) is None


async def test_hosts_fill_by_free_memory_then_the_location_is_full(app, factory):
    user = await factory.account(credits=1000)
    small = await add_host(app, "kvm-a", 8192)
    big = await add_host(app, "kvm-b", 16384)

    placed = []
    for n in range(6):
        server = await factory.server(user, name=f"web-{n}", wait=None)
        placed.append(await host_of(app, server["id"]))
    balance = await factory.balance(user)
    full = await create(factory, user, name="one-too-many")

    # 4096 MB each: b 16384 > a 8192; b 12288; tie at 8192 goes to the name first (a); ...
    assert placed == [big, big, small, big, small, big]
    assert full.status_code == 503
    assert full.json()["code"] == "capacity_unavailable"
    assert "us-west" in full.json()["detail"] and "Standard VPS" in full.json()["detail"]
    assert await factory.balance(user) == balance
    listing = await factory.client.get("/api/v1/servers/", headers=user.headers)
    assert listing.json()["count"] == 6


async def test_a_smaller_plan_still_fits_where_a_larger_does_not(app, factory, user):
    await add_host(app, "kvm-a", 6144)
    await factory.server(user, name="standard")  # 4096 of 6144 MB

    refused = await create(factory, user, name="performance", plan_id=2)  # 8192 MB
    accepted = await create(factory, user, name="starter", plan_id=3)  # 1024 MB

    assert refused.status_code == 503
    assert accepted.status_code == 201


async def test_deleting_a_server_frees_its_room(app, factory, user):
    host = await add_host(app, "kvm-a", 4096)
    first = await factory.server(user, name="first")
    assert (await create(factory, user, name="second")).status_code == 503

    deleted = await factory.client.delete(f"/api/v1/servers/{first['id']}/", headers=user.headers)
    assert deleted.status_code == 204
    await _until_deleted(app, first["id"])
    second = await create(factory, user, name="second")

    assert second.status_code == 201
    assert await host_of(app, second.json()["id"]) == host


async def test_disabled_and_draining_hosts_take_no_new_servers(app, factory, user):
    await add_host(app, "kvm-a", 65536)
    await add_host(app, "kvm-b", 65536)
    async with transaction(app.state.runtime.sessions) as session:
        await hosts.disable(session, "kvm-a")
        await hosts.drain(session, "kvm-b")

    refused = await create(factory, user)
    async with transaction(app.state.runtime.sessions) as session:
        enabled = await hosts.enable(session, "kvm-b")
    accepted = await create(factory, user)

    assert refused.status_code == 503  # hosts exist, none open: never the default host
    assert accepted.status_code == 201
    assert await host_of(app, accepted.json()["id"]) == enabled.id


async def test_concurrent_creates_never_overfill_a_host(app, factory):
    user = await factory.account(credits=1000)
    await add_host(app, "kvm-a", 4096 * 3)

    responses = await asyncio.gather(*(create(factory, user, name=f"race-{n}") for n in range(8)))

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 3 + [503] * 5, [r.text for r in responses]


async def _until_deleted(app: FastAPI, server_id: int) -> None:
    for _ in range(500):
        async with transaction(app.state.runtime.sessions) as session:
            server = await session.get(Server, server_id)
            assert server is not None
            if server.status == "deleted":
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"server {server_id} was never deleted")
