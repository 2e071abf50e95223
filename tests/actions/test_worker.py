"""The action queue and the worker: failures, races, leases, ordering."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import select, update

from vpsorg import clock
from vpsorg.accounts.models import Account
from vpsorg.actions import identity, queue
from vpsorg.actions.identity import new_worker_id
from vpsorg.actions.models import Action
from vpsorg.actions.outcomes import OutcomeWriter
from vpsorg.actions.worker import Worker
from vpsorg.db import transaction
from vpsorg.servers import lifecycle
from vpsorg.servers.models import Server


async def _actions(app, server_id: int) -> list[Action]:
    async with transaction(app.state.runtime.sessions) as session:
        rows = await session.scalars(
            select(Action).where(Action.server_id == server_id).order_by(Action.id)
        )
        return list(rows.all())


async def _wait_actions_done(app, server_id: int, timeout: float = 10.0) -> list[Action]:
    async with asyncio.timeout(timeout):
        while True:
            actions = await _actions(app, server_id)
            if all(a.status in ("success", "error") for a in actions):
                return actions
            await asyncio.sleep(0.02)


async def test_driver_failure_ends_in_error_with_the_reason_kept(client, app, user, factory):
    app.state.runtime.driver.inject_fault("create", "disk image is corrupt")

    server = await factory.server(user, wait="error")

    assert server["ip_address"] is None
    [action] = await _wait_actions_done(app, server["id"])
    assert (action.command, action.status) == ("create", "error")
    assert action.error == "disk image is corrupt"
    assert action.error_code == "driver_failed"
    assert action.finished_at is not None
    start = await client.post(f"/api/v1/servers/{server['id']}/start/", headers=user.headers)
    assert start.status_code == 400 and start.json()["code"] == "invalid_state"
    delete = await client.delete(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    assert delete.status_code == 204


async def test_failed_stop_leaves_server_in_error(client, app, user, factory):
    server = await factory.server(user)
    app.state.runtime.driver.inject_fault(
        "stop", "guest agent timed out", machine=f"vps-{server['id']}"
    )

    await client.post(f"/api/v1/servers/{server['id']}/stop/", headers=user.headers)

    await factory.wait_for(user, server["id"], "error")
    actions = await _wait_actions_done(app, server["id"])
    assert [(a.command, a.status, a.error) for a in actions] == [
        ("create", "success", None),
        ("stop", "error", "guest agent timed out"),
    ]


async def test_retriable_failure_is_retried_then_succeeds(app, user, factory):
    app.state.runtime.settings.action_retry_base_seconds = 0.01
    app.state.runtime.driver.inject_fault("create", "host unreachable", retriable=True, times=2)

    server = await factory.server(user, wait="active")

    [action] = await _wait_actions_done(app, server["id"])
    assert action.status == "success"
    assert action.attempts == 3


async def test_concurrent_actions_on_one_server_exactly_one_wins(client, app, user, factory):
    server = await factory.server(user)
    app.state.runtime.driver.delay = 1.0  # the winner's action is still running when the rest land
    url = f"/api/v1/servers/{server['id']}"
    requests = [client.post(f"{url}/{cmd}/", headers=user.headers)
                for cmd in ("stop", "reboot", "stop", "reboot", "stop", "reboot")]  # fmt: skip

    responses = await asyncio.gather(*requests)

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 400, 400, 400, 400, 400]
    for response in responses:
        if response.status_code == 400:
            assert response.json()["code"] == "invalid_state"


async def test_status_guard_lets_one_of_two_sessions_win(app, user, factory):
    """The guard itself: two transactions move one server out of 'active'."""
    server = await factory.server(user)
    from vpsorg.servers import repository

    async def attempt(target: str) -> bool:
        async with transaction(app.state.runtime.sessions) as session:
            return await repository.transition(session, server["id"], ["active"], target)

    results = await asyncio.gather(attempt("stopping"), attempt("rebooting"))
    assert sorted(results) == [False, True]


async def test_busy_server_rejects_actions_with_its_status(client, app, user, factory):
    app.state.runtime.driver.delay = 0.5
    server = await factory.server(user, wait=None)

    response = await client.post(f"/api/v1/servers/{server['id']}/start/", headers=user.headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_state"
    assert "provisioning" in response.json()["detail"]


async def test_start_on_running_and_stop_on_stopped_are_400(client, user, factory):
    server = await factory.server(user)
    url = f"/api/v1/servers/{server['id']}"

    start = await client.post(f"{url}/start/", headers=user.headers)
    assert start.status_code == 400 and "already running" in start.json()["detail"]

    await client.post(f"{url}/stop/", headers=user.headers)
    await factory.wait_for(user, server["id"], "stopped")
    for command in ("stop", "reboot"):
        response = await client.post(f"{url}/{command}/", headers=user.headers)
        assert response.status_code == 400 and "not running" in response.json()["detail"]


async def test_suspended_server_actions_are_402(client, app, user, factory):
    server = await factory.server(user)
    async with transaction(app.state.runtime.sessions) as session:
        row = await session.get(Server, server["id"])
        row.status = "suspended"

    for command in ("start", "stop", "reboot"):
        response = await client.post(
            f"/api/v1/servers/{server['id']}/{command}/", headers=user.headers
        )
        assert response.status_code == 402
        assert response.json()["code"] == "account_suspended"


async def test_delete_while_provisioning_waits_for_create_then_destroys(client, app, user, factory):
    app.state.runtime.driver.delay = 0.2
    server = await factory.server(user, wait=None)

    response = await client.delete(f"/api/v1/servers/{server['id']}/", headers=user.headers)

    assert response.status_code == 204
    actions = await _wait_actions_done(app, server["id"])
    assert [(a.command, a.status) for a in actions] == [
        ("create", "success"),
        ("delete", "success"),
    ]
    assert actions[0].finished_at <= actions[1].started_at
    async with transaction(app.state.runtime.sessions) as session:
        row = await session.get(Server, server["id"])
        assert (row.status, row.ipv4_address, row.ipv6_address) == ("deleted", None, None)
    assert await app.state.runtime.driver.state(f"vps-{server['id']}") == "missing"


async def test_expired_lease_is_reclaimed_and_the_old_owner_cannot_finish(app, user, factory):
    await app.state.runtime.close()  # stop the embedded worker: this test drives the queue
    server = await factory.server(user, wait=None)
    sessions = app.state.runtime.sessions

    async with transaction(sessions) as session:
        first = await queue.claim(session, "worker-a", lease_seconds=30)
    assert first is not None and first.server_id == server["id"]
    async with transaction(sessions) as session:
        assert await queue.claim(session, "worker-b", lease_seconds=30) is None

    later = clock.utcnow() + timedelta(seconds=31)
    clock.set_clock(lambda: later)
    try:
        async with transaction(sessions) as session:
            second = await queue.claim(session, "worker-b", lease_seconds=30)
        assert second is not None and second.id == first.id and second.attempts == 2
        async with transaction(sessions) as session:
            assert not await queue.finish(session, first.id, "worker-a")
            assert await queue.finish(session, first.id, "worker-b")
    finally:
        clock.set_clock(None)
    [action] = await _actions(app, server["id"])
    assert (action.status, action.claimed_by) == ("success", "worker-b")


async def test_actions_of_one_server_run_in_order(app, user, factory):
    await app.state.runtime.close()
    server = await factory.server(user, wait=None)
    sessions = app.state.runtime.sessions
    async with transaction(sessions) as session:
        await queue.enqueue(session, server["id"], user.account_id, "delete")

    async with transaction(sessions) as session:
        create = await queue.claim(session, "w1", 30)
    async with transaction(sessions) as session:
        blocked = await queue.claim(session, "w2", 30)
    assert create is not None and create.command == "create"
    assert blocked is None
    async with transaction(sessions) as session:
        await queue.finish(session, create.id, "w1")
    async with transaction(sessions) as session:
        delete = await queue.claim(session, "w2", 30)
    assert delete is not None and delete.command == "delete"


async def test_usage_is_sampled_periodically(app, user, factory):
    server = await factory.server(user)
    worker = app.state.runtime.worker
    worker.settings.usage_interval = 0.0001

    assert await worker.sample_usage() >= 1
    async with transaction(app.state.runtime.sessions) as session:
        row = await session.get(Server, server["id"])
        assert row.usage_sampled_at is not None
        assert row.memory_used_mb > 0


async def test_release_at_shutdown_does_not_count_as_an_attempt(app, user, factory):
    await app.state.runtime.close()
    server = await factory.server(user, wait=None)
    sessions = app.state.runtime.sessions
    async with transaction(sessions) as session:
        action = await queue.claim(session, "w1", 30)
        assert action is not None and action.attempts == 1
        assert await queue.release(session, action.id, "w1", count_attempt=False)
    async with transaction(sessions) as session:
        again = await queue.claim(session, "w2", 30)
        assert again is not None and again.id == action.id and again.attempts == 1
        assert await queue.release(session, again.id, "w2", delay=0)
    [row] = await _actions(app, server["id"])
    assert (row.status, row.attempts, row.claimed_by) == ("pending", 1, None)


async def test_any_runnable_agrees_with_claim(app, user, factory):
    await app.state.runtime.close()
    server = await factory.server(user, wait=None)
    sessions, read_sessions = app.state.runtime.sessions, app.state.runtime.read_sessions
    async with transaction(sessions) as session:
        await queue.enqueue(session, server["id"], user.account_id, "delete")

    async def runnable() -> bool:
        async with transaction(read_sessions) as session:
            return await queue.any_runnable(session)

    assert await runnable()
    async with transaction(sessions) as session:
        create = await queue.claim(session, "w1", 30)
    assert create is not None
    assert not await runnable()  # the create is leased; the delete waits for it
    async with transaction(sessions) as session:
        assert await queue.release(session, create.id, "w1", delay=60)
    assert not await runnable()  # the create is backing off
    async with transaction(sessions) as session:
        assert await queue.claim(session, "w1", 30) is None

    later = clock.utcnow() + timedelta(seconds=61)
    clock.set_clock(lambda: later)
    try:
        assert await runnable()
    finally:
        clock.set_clock(None)


async def test_an_idle_worker_looks_without_waiting_for_the_write_lock(app, user, factory):
    runtime = app.state.runtime
    await runtime.close()
    worker = Worker(runtime, concurrency=1)

    async with transaction(runtime.sessions) as session:
        # A write in progress: on SQLite it holds the database's write lock, which a claim
        # would wait for (and fail after the busy timeout).
        await session.execute(
            update(Account).where(Account.id == user.account_id).values(name=Account.name)
        )
        assert await worker.run_once(look_first=True) is False

    server = await factory.server(user, wait=None)
    assert await worker.run_once(look_first=True) is True
    [action] = await _actions(app, server["id"])
    assert action.status == "success"


def _worker_id_of(pid: int, started: int | None = None) -> str:
    """A worker id of this host for process ``pid`` (its start time read from /proc)."""
    host, _pid, start, scope, _random = new_worker_id().rsplit(":", 4)
    if started is None:
        process = identity._process(pid)
        started = process[1] if process else int(start)
    return f"{host}:{pid}:{started}:{scope}:test00"


def test_a_worker_is_dead_when_its_process_is_gone_or_its_pid_reused():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = _worker_id_of(child.pid)
        assert not identity.is_dead_worker(alive)
        assert identity.is_dead_worker(_worker_id_of(child.pid, started=1))  # pid reused
        assert not identity.is_dead_worker(new_worker_id())  # this process
        assert not identity.is_dead_worker(f"elsewhere:{child.pid}:1:{alive.split(':')[3]}:x")
        assert not identity.is_dead_worker(alive.replace(":test00", "").rsplit(":", 1)[0])
    finally:
        child.kill()
        child.wait()
    assert identity.is_dead_worker(alive)


async def test_actions_of_a_dead_worker_of_this_host_are_taken_back_at_once(app, user, factory):
    runtime = app.state.runtime
    await runtime.close()
    exited = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await exited.wait()
    dead, alive = _worker_id_of(exited.pid), _worker_id_of(os.getppid())
    servers = [await factory.server(user, wait=None) for _ in range(3)]
    async with transaction(runtime.sessions) as session:
        held = [await queue.claim(session, holder, lease_seconds=600) for holder in (dead, dead)]
        other = await queue.claim(session, alive, lease_seconds=600)
    assert all(held) and other is not None
    worker = Worker(runtime, concurrency=1)

    assert await worker.take_back_from_dead_workers() == 2
    assert await worker.take_back_from_dead_workers() == 0
    async with transaction(runtime.sessions) as session:
        taken = [await queue.claim(session, worker.id, lease_seconds=30) for _ in range(3)]
    assert sorted(a.id for a in taken if a) == sorted(a.id for a in held if a)
    assert all(a.attempts == 2 for a in taken if a)  # counted as after an expired lease
    assert taken[2] is None  # the live worker's action is still its own
    assert {s["id"] for s in servers} >= {a.server_id for a in taken if a}


async def test_batch_claims_of_two_workers_never_share_an_action(app, user, factory):
    runtime = app.state.runtime
    await runtime.close()
    servers = [await factory.server(user, name=f"b{n}", wait=None) for n in range(6)]
    sessions = runtime.sessions

    async def claim(holder: str) -> list[Action]:
        async with transaction(sessions) as session:
            return await queue.claim_many(session, holder, lease_seconds=30, limit=4)

    first, second = await asyncio.gather(claim("w1"), claim("w2"))

    ids = [a.id for a in first] + [a.id for a in second]
    assert len(ids) == len(set(ids)) == 6  # each of the six creates claimed, by one worker
    assert sorted(a.server_id for a in first + second) == sorted(s["id"] for s in servers)
    rows = {a.id: a for s in servers for a in await _actions(app, s["id"])}
    for holder, claimed in (("w1", first), ("w2", second)):
        for action in claimed:
            assert (rows[action.id].status, rows[action.id].claimed_by) == ("running", holder)
            assert rows[action.id].attempts == 1 and rows[action.id].lease_until is not None
    async with transaction(sessions) as session:
        assert await queue.claim_many(session, "w3", lease_seconds=30, limit=4) == []


async def test_a_batch_claim_takes_one_action_per_server_in_order(app, user, factory):
    runtime = app.state.runtime
    await runtime.close()
    one, two = [await factory.server(user, name=f"o{n}", wait=None) for n in range(2)]
    async with transaction(runtime.sessions) as session:
        await queue.enqueue(session, one["id"], user.account_id, "delete")

    async with transaction(runtime.sessions) as session:
        claimed = await queue.claim_many(session, "w1", lease_seconds=30, limit=10)

    assert [(a.server_id, a.command) for a in claimed] == [
        (one["id"], "create"),
        (two["id"], "create"),
    ]


async def test_an_expired_lease_of_a_batch_is_reclaimed_by_another_batch(app, user, factory):
    runtime = app.state.runtime
    await runtime.close()
    for n in range(3):
        await factory.server(user, name=f"l{n}", wait=None)
    sessions = runtime.sessions
    async with transaction(sessions) as session:
        held = await queue.claim_many(session, "worker-a", lease_seconds=30, limit=2)
    assert len(held) == 2

    later = clock.utcnow() + timedelta(seconds=31)
    clock.set_clock(lambda: later)
    try:
        async with transaction(sessions) as session:
            taken = await queue.claim_many(session, "worker-b", lease_seconds=30, limit=3)
        assert len(taken) == 3  # the two expired leases and the action nobody held
        assert {a.id for a in held} < {a.id for a in taken}
        assert {a.id: a.attempts for a in taken if a.id in {h.id for h in held}} == {
            h.id: 2 for h in held
        }
        async with transaction(sessions) as session:
            assert not await queue.finish(session, held[0].id, "worker-a")
            assert not await queue.renew(session, held[1].id, "worker-a", 30)
            assert await queue.finish(session, held[0].id, "worker-b")
    finally:
        clock.set_clock(None)


async def test_one_worker_runs_a_batch_with_its_concurrency(app, user, factory):
    runtime = app.state.runtime
    await runtime.close()
    servers = [await factory.server(user, name=f"c{n}", wait=None) for n in range(5)]
    worker = Worker(runtime, concurrency=3)

    assert await worker.run_once(limit=3) is True
    done = [a for s in servers for a in await _actions(app, s["id"]) if a.status == "success"]
    assert len(done) == 3 and {a.claimed_by for a in done} == {worker.id}

    worker.start()
    try:
        for server in servers:
            await factory.wait_for(user, server["id"], "active")
    finally:
        await worker.stop()


async def test_outcomes_written_together_never_cost_each_other(app, user, factory, monkeypatch):
    runtime = app.state.runtime
    await runtime.close()
    servers = [await factory.server(user, name=f"t{n}", wait=None) for n in range(3)]
    async with transaction(runtime.sessions) as session:
        claimed = await queue.claim_many(session, "w1", lease_seconds=30, limit=3)
        jobs = [await lifecycle.prepare(session, action) for action in claimed]
    async with transaction(runtime.sessions) as session:  # the third was taken over
        await session.execute(
            update(Action).where(Action.id == jobs[2].action_id).values(claimed_by="w2")
        )
    broken = jobs[0].server_id
    succeeded = lifecycle.succeeded

    async def failing(session, job, outcome):  # type: ignore[no-untyped-def]
        if job.server_id == broken:
            raise RuntimeError("a write that fails")
        await succeeded(session, job, outcome)

    monkeypatch.setattr(lifecycle, "succeeded", failing)
    writer = OutcomeWriter(runtime.sessions, "w1")

    results = await asyncio.gather(
        *(writer.write(job, None, None) for job in jobs), return_exceptions=True
    )

    assert isinstance(results[0], RuntimeError) and results[1:] == [True, False]
    rows = {a.server_id: a for s in servers for a in await _actions(app, s["id"])}
    assert (rows[jobs[0].server_id].status, rows[jobs[0].server_id].claimed_by) == ("running", "w1")
    assert rows[jobs[1].server_id].status == "success"
    assert rows[jobs[2].server_id].status == "running"  # its new owner records it
    async with transaction(runtime.sessions) as session:
        statuses = {
            s.id: s.status for s in await session.scalars(select(Server).where(Server.id.in_(rows)))
        }
    assert statuses[jobs[0].server_id] == "provisioning"  # rolled back with its outcome
    assert statuses[jobs[1].server_id] == "active"
    assert statuses[jobs[2].server_id] == "provisioning"  # not the old owner's to move


async def _claimed_jobs(app, user, factory, count: int, lost: int | None = None):  # type: ignore[no-untyped-def]
    """``count`` create actions claimed by worker w1; the ``lost``-th since taken by w2."""
    runtime = app.state.runtime
    await runtime.close()
    for n in range(count):
        await factory.server(user, name=f"f{n}", wait=None)
    async with transaction(runtime.sessions) as session:
        claimed = await queue.claim_many(session, "w1", lease_seconds=30, limit=count)
        jobs = [await lifecycle.prepare(session, action) for action in claimed]
    if lost is not None:
        async with transaction(runtime.sessions) as session:
            await session.execute(
                update(Action).where(Action.id == jobs[lost].action_id).values(claimed_by="w2")
            )
    return jobs


async def _servers_and_actions(app):  # type: ignore[no-untyped-def]
    async with transaction(app.state.runtime.sessions) as session:
        servers = {s.id: s for s in await session.scalars(select(Server))}
        actions = {a.server_id: a for a in await session.scalars(select(Action))}
    return servers, actions


async def test_a_batch_marks_its_actions_finished_last(app, user, factory):
    """``finished_at`` is stamped by the batch's last statement, after its servers moved:
    when the outcome became visible, from which a long-poll is measured."""
    jobs = await _claimed_jobs(app, user, factory, 3)
    writer = OutcomeWriter(app.state.runtime.sessions, "w1")

    assert await asyncio.gather(*(writer.write(job, None, None) for job in jobs)) == [True] * 3

    servers, actions = await _servers_and_actions(app)
    for job in jobs:
        assert servers[job.server_id].status == "active"
        assert actions[job.server_id].finished_at >= servers[job.server_id].updated_at


async def test_an_action_lost_during_a_batch_is_left_to_its_new_owner(app, user, factory):
    jobs = await _claimed_jobs(app, user, factory, 3, lost=2)
    writer = OutcomeWriter(app.state.runtime.sessions, "w1")

    results = await asyncio.gather(*(writer.write(job, None, None) for job in jobs))

    assert results == [True, True, False]
    servers, actions = await _servers_and_actions(app)
    assert [servers[j.server_id].status for j in jobs] == ["active", "active", "provisioning"]
    assert [actions[j.server_id].status for j in jobs] == ["success", "success", "running"]
