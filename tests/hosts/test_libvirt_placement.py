"""Placement onto real libvirt connections: two in-memory ``test:///`` hosts, each its own
hypervisor with its own memory, filled through the API in the expected order."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.factories import SERVER, Factory
from tests.requirements import require_libvirt_binding
from vpsorg.app import create_app
from vpsorg.db import transaction
from vpsorg.hosts import service as hosts

STARTER = 3  # 1 vCPU, 1024 MB, 25 GB (test:/// pools hold 100 GB)
NODE = """<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>
       <cores>{cores}</cores><threads>1</threads></cpu>
  <memory>{memory_kib}</memory>
</node>
"""


def node(tmp_path: Path, name: str, cores: int, memory_mb: int) -> str:
    path = tmp_path / f"{name}.xml"
    path.write_text(NODE.format(cores=cores, memory_kib=memory_mb * 1024))
    return f"test://{path}"


@pytest.fixture
async def app(databases: Any, tmp_path: Path) -> AsyncIterator[FastAPI]:
    require_libvirt_binding()
    settings = make_settings(
        databases.fresh(tmp_path), tmp_path, driver="libvirt", libvirt_uri="test:///default",
        libvirt_pool="vpsorg-placement", libvirt_pool_path=tmp_path / "pool", libvirt_network="",
    )  # fmt: skip
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def add_host(app: FastAPI, name: str, uri: str) -> int:
    """As ``vpsorg hosts add NAME --uri URI --disk-gb 1000`` does: the rest read from libvirt."""
    read = await app.state.runtime.driver.capacity(host_uri=uri)
    async with transaction(app.state.runtime.sessions) as session:
        host = await hosts.add_host(
            session, name, "us-west", uri, dataclasses.replace(read, disk_gb=1000)
        )
        return host.id


async def test_two_libvirt_hosts_fill_by_free_memory(app, factory: Factory, tmp_path):
    user = await factory.account(credits=1000)
    small = node(tmp_path, "small", cores=4, memory_mb=2048)
    big = node(tmp_path, "big", cores=8, memory_mb=3072)
    await add_host(app, "kvm-small", small)
    await add_host(app, "kvm-big", big)
    driver = app.state.runtime.driver

    names = []
    for n in range(5):
        server = await factory.server(user, name=f"web-{n}", plan_id=STARTER)
        assert server["status"] == "active"
        names.append(f"vps-{server['id']}")
    full = await factory.client.post(
        "/api/v1/servers/",
        json={**SERVER, "name": "one-too-many", "plan_id": STARTER},
        headers=user.headers,
    )

    on_small, on_big = await driver.machines(host_uri=small), await driver.machines(host_uri=big)
    # 1024 MB each: big 3072 > small 2048; a tie at 2048 goes to kvm-big (the name sorting
    # first); small 2048 > big 1024; a tie at 1024, kvm-big again; then small; then full.
    assert sorted(on_big) == sorted([names[0], names[1], names[3]])
    assert sorted(on_small) == sorted([names[2], names[4]])
    assert full.status_code == 503
    assert full.json()["code"] == "capacity_unavailable"

    for name in names:
        server_id = int(name.removeprefix("vps-"))
        response = await factory.client.delete(
            f"/api/v1/servers/{server_id}/", headers=user.headers
        )
        assert response.status_code == 204
    await _until_empty(driver, [small, big])


async def _until_empty(driver: Any, uris: list[str]) -> None:
    import asyncio

    for _ in range(250):
        if not any([await driver.machines(host_uri=uri) for uri in uris]):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("machines left after delete")
