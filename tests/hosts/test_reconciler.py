"""The reconciler: guests that changed behind vpsorg's back, seen through the API."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from tests.factories import SERVER, Factory, User
from vpsorg.db import transaction
from vpsorg.drivers.base import HostCapacity, MachineSpec, MachineState
from vpsorg.hosts import service as hosts
from vpsorg.hosts.reconciler import Finding, Reconciler
from vpsorg.servers import repository
from vpsorg.servers.models import Server, ServerStatus

STRANGER = MachineSpec(name="hand-made-vm", hostname="x", vcpus=1, memory_mb=512, disk_gb=5,
                       os_slug="debian-12")  # fmt: skip


def reconciler(app: FastAPI) -> Reconciler:
    runtime = app.state.runtime
    return Reconciler(runtime.sessions, runtime.driver)


async def status(factory: Factory, user: User, server_id: int) -> str:
    response = await factory.client.get(f"/api/v1/servers/{server_id}/", headers=user.headers)
    return str(response.json()["status"])


async def test_a_guest_that_shut_itself_down_becomes_stopped(app, factory, user):
    server = await factory.server(user)
    app.state.runtime.driver.guest_power_off(f"vps-{server['id']}")

    findings = await reconciler(app).run()

    assert findings == [Finding("(default)", f"vps-{server['id']}", server["id"], "active",
                                MachineState.STOPPED, corrected_to="stopped")]  # fmt: skip
    assert await status(factory, user, server["id"]) == "stopped"
    started = await factory.client.post(
        f"/api/v1/servers/{server['id']}/start/", headers=user.headers
    )
    assert started.status_code == 200
    await factory.wait_for(user, server["id"], "active")


async def test_a_stopped_server_found_running_becomes_active(app, factory, user):
    server = await factory.server(user)
    await factory.client.post(f"/api/v1/servers/{server['id']}/stop/", headers=user.headers)
    await factory.wait_for(user, server["id"], "stopped")
    await app.state.runtime.driver.start(f"vps-{server['id']}")  # booted by hand on the host

    await reconciler(app).run()

    assert await status(factory, user, server["id"]) == "active"


async def test_a_vanished_machine_puts_the_server_in_error(app, factory, user):
    server = await factory.server(user)
    await app.state.runtime.driver.delete(f"vps-{server['id']}")

    await reconciler(app).run()

    assert await status(factory, user, server["id"]) == "error"


async def test_a_machine_nobody_owns_is_reported_once_and_never_touched(app, factory, user, caplog):
    server = await factory.server(user)
    driver = app.state.runtime.driver
    await driver.create(STRANGER)
    subject = reconciler(app)

    with caplog.at_level(logging.WARNING, logger="vpsorg.hosts.reconciler"):
        first = await subject.run()
        second = await subject.run()

    stranger = Finding("(default)", "hand-made-vm", None, None, MachineState.RUNNING)
    assert first == second == [stranger]
    assert [r.getMessage() for r in caplog.records] == [
        "reconciler: (default): machine hand-made-vm (running) belongs to no server; left alone"
    ]
    assert await driver.state("hand-made-vm") == MachineState.RUNNING
    assert await status(factory, user, server["id"]) == "active"


async def test_audit_reports_without_correcting(app, factory, user):
    server = await factory.server(user)
    app.state.runtime.driver.guest_power_off(f"vps-{server['id']}")

    [finding] = await reconciler(app).run(correct=False)

    assert finding.corrected_to is None
    assert await status(factory, user, server["id"]) == "active"


async def test_a_change_made_meanwhile_wins_over_the_reconciler(app, factory, user):
    server = await factory.server(user)
    async with transaction(app.state.runtime.sessions) as session:
        row = await session.get(Server, server["id"])
        assert row is not None
        seen = row.updated_at
    # An action moves the server on (and back to active) after the reconciler read it.
    async with transaction(app.state.runtime.sessions) as session:
        assert await repository.transition(session, server["id"], ["active"], "active")

    async with transaction(app.state.runtime.sessions) as session:
        moved = await repository.transition(
            session, server["id"], ["active"], ServerStatus.STOPPED, unchanged_since=seen
        )

    assert moved is False
    assert await status(factory, user, server["id"]) == "active"


async def test_servers_of_a_disabled_host_are_left_alone(app, factory, user):
    async with transaction(app.state.runtime.sessions) as session:
        await hosts.add_host(session, "kvm-a", "us-west", "test:///a", HostCapacity(8, 65536, 1000))
    server = await factory.server(user, **{**SERVER, "name": "on-kvm-a"})
    app.state.runtime.driver.guest_power_off(f"vps-{server['id']}")
    async with transaction(app.state.runtime.sessions) as session:
        await hosts.disable(session, "kvm-a")

    assert await reconciler(app).run() == []
    assert await status(factory, user, server["id"]) == "active"


async def test_machines_of_other_hosts_are_not_strangers(app, factory, user):
    # The simulator lists every machine on every host; each belongs to the host it is on.
    async with transaction(app.state.runtime.sessions) as session:
        for name in ("sim-a", "sim-b"):
            await hosts.add_host(
                session, name, "us-west", f"sim://{name}", HostCapacity(8, 65536, 1000)
            )
    first = await factory.server(user, **{**SERVER, "name": "one"})
    second = await factory.server(user, **{**SERVER, "name": "two"})

    findings = await reconciler(app).run(correct=False)
    app.state.runtime.driver.guest_power_off(f"vps-{second['id']}")
    [stopped] = await reconciler(app).run(correct=False)

    assert findings == []
    assert (stopped.server_id, stopped.actual) == (second["id"], MachineState.STOPPED)
    assert first["id"] != second["id"]
