"""Snapshots and backups through the API, on the simulator: take, list, restore, delete."""

from __future__ import annotations

import asyncio

from tests.backups.conftest import backups_of, finished, snapshot
from tests.conftest import make_settings
from vpsorg.app import create_app


async def test_a_snapshot_is_taken_listed_and_deleted(client, user, factory, app):
    server = await factory.server(user, backups_enabled=False)
    created = await snapshot(client, user, server["id"], "before-upgrade")
    assert created["backup"]["status"] == "creating"
    assert created["action"]["command"] == "snapshot"

    [listed] = await backups_of(client, user, server["id"])
    assert listed["kind"] == "snapshot" and listed["name"] == "before-upgrade"
    assert listed["status"] == "available" and listed["size_gb"] >= 1
    assert set(listed) == {"id", "kind", "name", "status", "size_gb", "created_at"}
    driver = app.state.runtime.driver
    assert len(driver.backups()) == 1
    # The server's status never changed.
    assert (await factory.wait_for(user, server["id"], "active"))["status"] == "active"

    url = f"/api/v1/servers/{server['id']}/backups/{listed['id']}/"
    assert (await client.delete(url, headers=user.headers)).status_code == 204
    assert await backups_of(client, user, server["id"]) == []
    assert (await client.delete(url, headers=user.headers)).status_code == 404
    for _ in range(200):
        if not driver.backups():
            break
        await asyncio.sleep(0.02)
    assert driver.backups() == []


async def test_restore_brings_the_disk_back_and_the_server_up(client, user, factory, app):
    driver = app.state.runtime.driver
    server = await factory.server(user)
    machine = f"vps-{server['id']}"
    driver.write_disk(machine, b"marker: 1111")
    backup = (await snapshot(client, user, server["id"]))["backup"]
    driver.write_disk(machine, b"marker: 2222")

    response = await client.post(
        f"/api/v1/servers/{server['id']}/restore/", json={"backup_id": backup["id"]},
        headers=user.headers,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["server"]["status"], body["action"]["command"]) == ("rebooting", "restore")
    assert (await finished(client, user, body["action"]))["status"] == "success"
    assert (await factory.wait_for(user, server["id"], "active"))["status"] == "active"
    assert driver.read_disk(machine) == b"marker: 1111"
    ops = [e["op"] for e in driver.journal() if e["machine"] == machine]
    assert ops[-3:] == ["stop", "restore", "start"]


async def test_a_stopped_server_is_restored_and_stays_stopped(client, user, factory, app):
    driver = app.state.runtime.driver
    server = await factory.server(user)
    machine = f"vps-{server['id']}"
    driver.write_disk(machine, b"old")
    backup = (await snapshot(client, user, server["id"]))["backup"]
    stop = await client.post(f"/api/v1/servers/{server['id']}/stop/", headers=user.headers)
    await finished(client, user, stop.json()["action"])
    driver.write_disk(machine, b"new")
    response = await client.post(
        f"/api/v1/servers/{server['id']}/restore/", json={"backup_id": backup["id"]},
        headers=user.headers,
    )  # fmt: skip
    assert response.json()["server"]["status"] == "stopped"
    await finished(client, user, response.json()["action"])
    assert driver.read_disk(machine) == b"old"
    assert (await factory.wait_for(user, server["id"], "stopped"))["status"] == "stopped"


async def test_bad_input_and_other_accounts(client, user, factory):
    server = await factory.server(user)
    other = await factory.account(name="other")
    theirs = await factory.server(other)
    their_backup = (await snapshot(client, other, theirs["id"]))["backup"]
    base = f"/api/v1/servers/{server['id']}"

    for body in ({}, {"name": ""}, {"name": "x" * 64}, {"name": 5}, {"name": "a", "x": 1}):
        response = await client.post(f"{base}/snapshots/", json=body, headers=user.headers)
        assert response.status_code == 400, body
    # Another account's server and backup do not exist for this caller.
    other_server = f"/api/v1/servers/{theirs['id']}"
    assert (await client.get(f"{other_server}/backups/", headers=user.headers)).status_code == 404
    response = await client.post(
        f"{other_server}/snapshots/", json={"name": "a"}, headers=user.headers
    )
    assert response.status_code == 404
    assert (
        await client.delete(f"{base}/backups/{their_backup['id']}/", headers=user.headers)
    ).status_code == 404
    # Restoring from a backup that is not this server's: a 400 naming the field.
    response = await client.post(
        f"{base}/restore/", json={"backup_id": their_backup["id"]}, headers=user.headers
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"backup_id": [f"Unknown backup {their_backup['id']}."]}
    for body in ({}, {"backup_id": "1"}, {"backup_id": 0}):
        response = await client.post(f"{base}/restore/", json=body, headers=user.headers)
        assert response.status_code == 400, body


async def test_a_power_action_is_accepted_while_a_backup_runs_and_waits_for_it(databases, tmp_path):
    settings = make_settings(databases.fresh(tmp_path), tmp_path, simulator_delay=0.3)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        import httpx

        from tests.factories import Factory

        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            factory = Factory(application.state.runtime, client)
            user = await factory.account()
            server = await factory.server(user)
            taken = await client.post(
                f"/api/v1/servers/{server['id']}/snapshots/", json={"name": "s"},
                headers=user.headers,
            )  # fmt: skip
            await asyncio.sleep(0.1)  # the copy is under way
            stop = await client.post(f"/api/v1/servers/{server['id']}/stop/", headers=user.headers)
            assert stop.status_code == 200, stop.text
            assert stop.json()["server"]["status"] == "stopping"
            copy = await finished(client, user, taken.json()["action"])
            stopped = await finished(client, user, stop.json()["action"])
            assert stopped["status"] == "success"
            assert stopped["started_at"] >= copy["finished_at"]


async def test_deleting_a_server_deletes_its_backups(client, user, factory, app):
    driver = app.state.runtime.driver
    server = await factory.server(user)
    await snapshot(client, user, server["id"], "one")
    await snapshot(client, user, server["id"], "two")
    assert len(driver.backups()) == 2
    response = await client.delete(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    assert response.status_code == 204
    for _ in range(200):
        if not driver.backups():
            break
        await asyncio.sleep(0.02)
    assert driver.backups() == []
    response = await client.get(f"/api/v1/servers/{server['id']}/backups/", headers=user.headers)
    assert response.status_code == 404
