"""Workers that die or are told to stop: nothing is lost, nothing runs twice.

The leases here are long (60 s) so that "taken back at once" is unambiguous: a new worker
on the same host takes back what a killed one held without waiting for its leases.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.concurrency.test_races import _journal, _rows
from tests.e2e.processes import Installation, wait_until

SERVERS = 6
LEASE_SECONDS = 60
# Far below the lease: proves the new worker did not wait for it (not a latency target).
TAKEN_BACK_WITHIN = 15.0


@pytest.fixture
def installation(installation_with) -> Installation:
    return installation_with(simulator_delay=1.5, action_lease_seconds=LEASE_SECONDS)


def _create_servers(installation: Installation, count: int) -> tuple[Any, list[int]]:
    user = installation.create_user("crash", credits=100)
    url = installation.serve("--no-worker").base_url
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        ids = []
        for n in range(count):
            body = {"name": f"c{n}", "plan_id": 3, "os_id": 3, "location": "us-west"}
            response = client.post("/api/v1/servers/", json=body, headers=user.headers)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return user, ids


def _running_claimed(db: str) -> list[Any]:
    return _rows(db, "SELECT id, claimed_by FROM actions WHERE status = 'running'")


def _all_finished(db: str) -> bool:
    return not _rows(db, "SELECT id FROM actions WHERE status IN ('pending', 'running')")


def test_a_killed_worker_s_actions_are_finished_by_another_exactly_once(installation):
    db = installation.database_url
    _user, server_ids = _create_servers(installation, SERVERS)
    doomed = installation.worker("--concurrency", "4")
    held = wait_until(lambda: len(_running_claimed(db)) >= 4 and _running_claimed(db),
                      "the first worker to claim four actions")  # fmt: skip

    doomed.kill()  # SIGKILL in the middle of the simulator's 1.5 s transitions
    killed_at = time.monotonic()
    survivor = installation.worker("--concurrency", "4")
    wait_until(lambda: _all_finished(db), "every action to finish", timeout=TAKEN_BACK_WITHIN)

    actions = {
        row.id: row for row in _rows(db, "SELECT id, status, attempts, claimed_by FROM actions")
    }
    assert all(row.status == "success" for row in actions.values())
    for action_id, doomed_id in held:
        assert actions[action_id].attempts == 2, actions[action_id]
        assert actions[action_id].claimed_by != doomed_id
    servers = _rows(db, "SELECT status FROM servers")
    assert [s.status for s in servers] == ["active"] * SERVERS
    creates = Counter(e["machine"] for e in _journal(installation) if e["op"] == "create")
    assert creates == Counter(f"vps-{i}" for i in server_ids)  # each machine built once
    journal = Counter((e["machine"], e["op"]) for e in _journal(installation))
    assert set(journal.values()) == {1}, journal  # each machine operation performed once
    print(f"\nreclaimed {len(held)} actions; all finished {time.monotonic() - killed_at:.1f} s "
          f"after the kill (lease {LEASE_SECONDS} s)")  # fmt: skip
    assert survivor.running


def test_a_reboot_re_run_after_a_kill_is_not_done_twice(installation_with):
    # A reboot is recorded and done at once, then the simulated guest takes 4 s to come back:
    # the kill lands between "recorded" and "finished".
    installation = installation_with(simulator_delay=4, action_lease_seconds=LEASE_SECONDS)
    db = installation.database_url
    user, server_ids = _create_servers(installation, 4)
    first = installation.worker("--concurrency", "4")
    wait_until(lambda: _all_finished(db), "the servers to be created", timeout=30)
    assert first.terminate() == 0
    url = installation.serve("--no-worker").base_url
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        for server_id in server_ids:
            response = client.post(f"/api/v1/servers/{server_id}/reboot/", headers=user.headers)
            assert response.status_code == 200, response.text

    doomed = installation.worker("--concurrency", "4")
    wait_until(
        lambda: len(_reboots(installation)) == len(server_ids),
        "the first worker to reboot every machine",
    )
    held = _running_claimed(db)
    assert len(held) == len(server_ids)  # rebooted, not yet finished
    doomed.kill()
    killed_at = time.monotonic()
    installation.worker("--concurrency", "4")
    wait_until(lambda: _all_finished(db), "the reboots to finish", timeout=TAKEN_BACK_WITHIN)

    took = time.monotonic() - killed_at
    print(f"\nreboots finished {took:.1f} s after the kill (lease {LEASE_SECONDS} s)")
    rows = _rows(db, "SELECT status, attempts FROM actions WHERE command = 'reboot'")
    assert [(row.status, row.attempts) for row in rows] == [("success", 2)] * len(server_ids)
    assert sorted(_reboots(installation)) == sorted(f"vps-{i}" for i in server_ids)  # once each
    assert [s.status for s in _rows(db, "SELECT status FROM servers")] == ["active"] * 4


def _reboots(installation: Installation) -> list[str]:
    return [e["machine"] for e in _journal(installation) if e["op"] == "reboot"]


def test_sigterm_lets_a_worker_finish_what_it_holds_and_exit(installation):
    db = installation.database_url
    _user, _ids = _create_servers(installation, SERVERS)
    worker = installation.worker("--concurrency", "2")
    held = wait_until(lambda: _running_claimed(db), "the worker to claim an action")

    assert worker.terminate(timeout=20) == 0
    rows = {row.id: row for row in _rows(db, "SELECT id, status, claimed_by FROM actions")}
    for action_id, _claimer in held:
        assert rows[action_id].status == "success"  # finished, not abandoned
    assert not _running_claimed(db)
    pending = [row for row in rows.values() if row.status == "pending"]
    assert pending, "the stopped worker should not have taken more work after SIGTERM"

    installation.worker("--concurrency", "4")
    wait_until(lambda: _all_finished(db), "the remaining actions to finish", timeout=30)
    assert all(s.status == "active" for s in _rows(db, "SELECT status FROM servers"))
