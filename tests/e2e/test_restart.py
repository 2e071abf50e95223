"""Actions survive the process that runs them: killed or stopped mid-action, then restarted.

The simulator takes 2 s per transition and leases last 1 s, so a create is still running
when the process goes away; the restarted process must finish it, whether the first one
was killed (its lease expires and the action is claimed again) or stopped gracefully.
"""

from __future__ import annotations

import signal
from typing import Any

import httpx
import pytest

from tests.e2e.processes import Installation, MakeInstallation, User, wait_for_status, wait_until

pytestmark = pytest.mark.e2e

SERVER = {"name": "web-server-02", "plan_id": 1, "os_id": 5, "location": "us-west",
          "hostname": "web02.example.com", "backups_enabled": True}  # fmt: skip


def start_creating(installation: Installation, user: User) -> tuple[int, dict[str, Any]]:
    """Serve, create a server, and return once a worker is running its create action."""
    process = installation.serve()
    with httpx.Client(base_url=process.base_url, trust_env=False) as http:
        response = http.post("/api/v1/servers/", json=SERVER, headers=user.headers)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "provisioning"
    server_id: int = response.json()["id"]

    def claimed() -> dict[str, Any] | None:
        [action] = installation.actions(server_id)
        return action if action["status"] == "running" else None

    action = wait_until(claimed, "the worker to claim the create action")
    assert (action["command"], action["attempts"]) == ("create", 1)
    return server_id, action


def finish_after_restart(installation: Installation, user: User, server_id: int) -> None:
    process = installation.serve()
    with httpx.Client(base_url=process.base_url, trust_env=False) as http:
        server = wait_for_status(http, user, server_id, "active", timeout=20.0)
    assert server["ip_address"] and server["ipv6_address"]
    assert (installation.simulator_dir / "machines" / f"vps-{server_id}.json").exists()


@pytest.fixture
def installation(installations: MakeInstallation) -> Installation:
    return installations(simulator_delay=2, action_lease_seconds=1)


def test_action_of_a_killed_process_is_reclaimed_and_finished(installation: Installation) -> None:
    user = installation.create_user()
    server_id, claim = start_creating(installation, user)

    installation.processes[0].kill()
    [orphan] = installation.actions(server_id)
    assert (orphan["status"], orphan["claimed_by"]) == ("running", claim["claimed_by"])
    finish_after_restart(installation, user, server_id)

    [action] = installation.actions(server_id)
    assert action["status"] == "success"
    assert action["attempts"] == 2
    assert action["claimed_by"] != claim["claimed_by"]


def test_action_survives_a_graceful_restart(installation: Installation) -> None:
    user = installation.create_user()
    server_id, _claim = start_creating(installation, user)

    exit_code = installation.processes[0].terminate()
    assert exit_code != -signal.SIGKILL, "SIGTERM did not stop vpsorg serve in time"
    finish_after_restart(installation, user, server_id)

    [action] = installation.actions(server_id)
    assert action["status"] == "success"
    assert action["error_code"] is None
