"""A server's whole life against a served process, with the simulator taking no time."""

from __future__ import annotations

import ipaddress
import time

import httpx
import pytest

from tests.e2e.processes import Deployment, MakeInstallation, wait_for_status, wait_until

pytestmark = pytest.mark.e2e

SERVER = {"name": "web-server-02", "plan_id": 1, "os_id": 5, "location": "us-west",
          "hostname": "web02.example.com", "backups_enabled": True}  # fmt: skip


def test_full_cycle_takes_under_a_second(deployment: Deployment) -> None:
    http, user = deployment.client, deployment.user
    started = time.monotonic()

    created = http.post("/api/v1/servers/", json=SERVER, headers=user.headers)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "provisioning"
    server_id = created.json()["id"]
    active = wait_for_status(http, user, server_id, "active")
    assert isinstance(ipaddress.ip_address(active["ip_address"]), ipaddress.IPv4Address)
    assert isinstance(ipaddress.ip_address(active["ipv6_address"]), ipaddress.IPv6Address)
    machine = deployment.installation.simulator_dir / "machines" / f"vps-{server_id}.json"
    assert machine.exists()

    for command, during, after in [
        ("stop", "stopping", "stopped"),
        ("start", "starting", "active"),
        ("reboot", "rebooting", "active"),
    ]:
        response = http.post(f"/api/v1/servers/{server_id}/{command}/", headers=user.headers)
        assert response.status_code == 200, response.text
        assert response.json()["server"] == {"id": server_id, "name": "web-server-02",
                                             "status": during}  # fmt: skip
        wait_for_status(http, user, server_id, after)

    deleted = http.delete(f"/api/v1/servers/{server_id}/", headers=user.headers)
    assert deleted.status_code == 204
    gone = http.get(f"/api/v1/servers/{server_id}/", headers=user.headers)
    assert gone.status_code == 404

    elapsed = time.monotonic() - started
    print(f"full cycle (create, stop, start, reboot, delete) over TCP: {elapsed:.3f}s")
    wait_until(lambda: not machine.exists(), f"the worker to destroy {machine.name}")


def test_api_and_standalone_worker_in_separate_processes(installations: MakeInstallation) -> None:
    installation = installations()
    user = installation.create_user()
    installation.worker()
    api = installation.serve("--no-worker")

    with httpx.Client(base_url=api.base_url, trust_env=False) as http:
        created = http.post("/api/v1/servers/", json=SERVER, headers=user.headers)
        assert created.status_code == 201, created.text
        server_id = created.json()["id"]
        wait_for_status(http, user, server_id, "active")
        stopping = http.post(f"/api/v1/servers/{server_id}/stop/", headers=user.headers)
        assert stopping.json()["server"]["status"] == "stopping"
        wait_for_status(http, user, server_id, "stopped")
