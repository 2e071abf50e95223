"""Actions through the API: the object, batch polling, history, long-polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from sqlalchemy import event, text, update

from vpsorg import clock
from vpsorg.actions import notifier, queue
from vpsorg.actions.models import Action
from vpsorg.actions.schemas import ActionOut
from vpsorg.db import transaction

ACTION_FIELDS = {"id", "command", "status", "progress", "server_id", "started_at",
                 "finished_at", "error"}  # fmt: skip


async def test_create_and_power_responses_carry_their_action(client, user, factory):
    created = await client.post(
        "/api/v1/servers/", json={"name": "web", "plan_id": 1, "os_id": 5, "location": "us-west"},
        headers=user.headers,
    )  # fmt: skip
    action = created.json()["action"]
    assert set(action) == ACTION_FIELDS
    assert (action["command"], action["status"], action["error"]) == ("create", "running", None)
    assert action["server_id"] == created.json()["id"]

    done = await client.get(f"/api/v1/actions/{action['id']}/?wait=5", headers=user.headers)
    assert done.status_code == 200
    body = done.json()
    assert (body["status"], body["progress"]) == ("success", 100)
    assert body["finished_at"].endswith("Z")


async def test_long_poll_is_woken_by_the_worker_when_the_action_finishes(
    client, app, user, factory, monkeypatch
):
    # The batched re-check is pushed far past the wait, so the request reads the action again
    # before `wait` runs out only if the worker's notification wakes it. Without the wake it
    # would answer `success` too, but only when the 10 s ran out: hence the second assertion.
    monkeypatch.setattr(notifier, "RECHECK_SECONDS", 60.0)
    monkeypatch.setattr(notifier, "POLL_SECONDS", 60.0)
    wait = 10.0
    app.state.runtime.driver.delay = 0.5
    server = await factory.server(user, wait=None)
    action_id = server["action"]["id"]

    asked = time.monotonic()
    response = await client.get(f"/api/v1/actions/{action_id}/?wait={wait}", headers=user.headers)
    waited = time.monotonic() - asked
    answered_at = clock.utcnow()

    assert response.json()["status"] == "success"
    assert waited < wait, "answered only when the wait ran out: the notification did not wake it"
    async with transaction(app.state.runtime.sessions) as session:
        finished_at = (await session.get(Action, action_id)).finished_at
    # For information only; the benchmark's `wake` row is the figure to watch.
    latency = (answered_at - finished_at).total_seconds()
    print(f"long-poll answered {latency * 1000:.1f} ms after the action finished")


async def test_long_poll_times_out_with_the_running_action(client, app, user, factory):
    app.state.runtime.driver.delay = 3
    server = await factory.server(user, wait=None)
    action_id = server["action"]["id"]

    response = await client.get(f"/api/v1/actions/{action_id}/?wait=0.3", headers=user.headers)

    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert response.json()["finished_at"] is None


async def test_wait_is_bounded_and_validated(client, user, factory):
    server = await factory.server(user, wait=None)
    action_id = server["action"]["id"]
    for bad in ("-1", "61", "soon"):
        response = await client.get(
            f"/api/v1/actions/{action_id}/?wait={bad}", headers=user.headers
        )
        assert response.status_code == 400, bad


async def test_batch_polling_by_ids(client, user, factory):
    first = await factory.server(user, name="a")
    second = await factory.server(user, name="b")
    ids = [first["action"]["id"], second["action"]["id"]]

    response = await client.get(
        f"/api/v1/actions/?id={ids[0]}&id={ids[1]}&id=999999", headers=user.headers
    )

    body = response.json()
    assert body["count"] == 2
    assert [a["id"] for a in body["results"]] == ids
    assert all(a["status"] == "success" for a in body["results"])


async def test_server_history_is_newest_first(client, user, factory):
    server = await factory.server(user)
    url = f"/api/v1/servers/{server['id']}"
    await client.post(f"{url}/stop/", headers=user.headers)
    await factory.wait_for(user, server["id"], "stopped")
    await client.post(f"{url}/start/", headers=user.headers)
    await factory.wait_for(user, server["id"], "active")

    history = (await client.get(f"{url}/actions/", headers=user.headers)).json()

    assert [a["command"] for a in history["results"]] == ["start", "stop", "create"]
    paged = (await client.get(f"{url}/actions/?per_page=1&page=2", headers=user.headers)).json()
    assert [a["command"] for a in paged["results"]] == ["stop"]
    assert paged["count"] == 3


async def test_failed_action_shows_its_error(client, app, user, factory):
    app.state.runtime.driver.inject_fault("create", "no bootable disk")
    server = await factory.server(user, wait="error")

    action = (await client.get(f"/api/v1/servers/{server['id']}/actions/",
                               headers=user.headers)).json()["results"][0]  # fmt: skip

    assert action["status"] == "error"
    assert action["error"] == {"code": "driver_failed", "message": "no bootable disk"}


async def test_other_accounts_actions_are_invisible(client, user, factory):
    server = await factory.server(user)
    intruder = await factory.account()
    action_id = server["action"]["id"]

    single = await client.get(f"/api/v1/actions/{action_id}/", headers=intruder.headers)
    batch = await client.get(f"/api/v1/actions/?id={action_id}", headers=intruder.headers)
    history = await client.get(f"/api/v1/servers/{server['id']}/actions/", headers=intruder.headers)
    listing = await client.get("/api/v1/actions/", headers=intruder.headers)

    assert single.status_code == 404
    assert batch.json()["count"] == 0
    assert history.status_code == 404
    assert listing.json()["count"] == 0


async def test_many_long_polls_at_once(client, app, user, factory):
    app.state.runtime.driver.delay = 0.3
    servers = [await factory.server(user, name=f"s{n}", wait=None) for n in range(5)]

    responses = await asyncio.gather(*[
        client.get(f"/api/v1/actions/{s['action']['id']}/?wait=10", headers=user.headers)
        for s in servers
    ])  # fmt: skip

    assert [r.json()["status"] for r in responses] == ["success"] * 5


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def test_many_long_polls_share_one_batched_recheck(client, app, user, factory, monkeypatch):
    # The actions finish in another process: no notification reaches this one (its worker
    # is stopped; the UPDATE below sends no NOTIFY), so only the batched re-check can tell.
    monkeypatch.setattr(notifier, "RECHECK_SECONDS", 0.05)
    monkeypatch.setattr(notifier, "POLL_SECONDS", 0.05)
    runtime = app.state.runtime
    await runtime.worker.stop()
    servers = [await factory.server(user, name=f"w{n}", wait=None) for n in range(8)]
    action_ids = [s["action"]["id"] for s in servers]
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "FROM actions" in statement:
            statements.append(statement)

    wait = 20.0
    polls = [
        asyncio.create_task(
            client.get(f"/api/v1/actions/{action_id}/?wait={wait}", headers=user.headers)
        )
        for action_id in action_ids
    ]
    await _until(lambda: runtime.notifier.waiting == len(action_ids))
    await asyncio.sleep(0.1)  # their first reads are done
    event.listen(runtime.read_engine.sync_engine, "before_cursor_execute", count)
    try:
        rechecks = runtime.notifier.rechecks
        await asyncio.sleep(0.5)
        waited = runtime.notifier.rechecks - rechecks
        assert waited >= 1
        # One query per re-check for all eight waiters (give or take one re-check under way
        # as the counting started or ended), not one per waiter.
        assert waited - 1 <= len(statements) <= waited + 1
        assert all(" IN " in s for s in statements)

        async with transaction(runtime.sessions) as session:
            await session.execute(
                update(Action)
                .where(Action.id.in_(action_ids))
                .values(status="success", progress=100, finished_at=clock.utcnow())
            )
        asked = time.monotonic()
        responses = await asyncio.gather(*polls)
    finally:
        event.remove(runtime.read_engine.sync_engine, "before_cursor_execute", count)
    assert time.monotonic() - asked < wait, "answered only when the wait ran out: not noticed"
    assert [r.json()["status"] for r in responses] == ["success"] * len(action_ids)
    assert runtime.notifier.waiting == 0


async def test_a_postgres_notification_from_another_connection_wakes_a_waiter(app, databases):
    if not databases.is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    runtime = app.state.runtime
    await _until(lambda: runtime.notifier.listening)

    with runtime.notifier.watch(424242) as waiter:
        async with transaction(runtime.sessions) as session:
            await session.execute(text("SELECT pg_notify('vpsorg_actions', '424242')"))
        assert await waiter.wait(10)


async def test_the_listener_works_with_a_psycopg_url_too(app, databases):
    if not databases.is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    runtime = app.state.runtime
    listener = notifier.ActionNotifier()
    url = runtime.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    listener.listen_postgres(url, driver="psycopg")
    try:
        await _until(lambda: listener.listening)
        with listener.watch(434343) as waiter:
            async with transaction(runtime.sessions) as session:
                await session.execute(text("SELECT pg_notify('vpsorg_actions', '434343')"))
            assert await waiter.wait(10)
    finally:
        await listener.close()


async def _pending_action_listened_for(app, user, factory, databases):  # type: ignore[no-untyped-def]
    """A create action no worker here will run, once the API process is listening."""
    if not databases.is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    runtime = app.state.runtime
    await runtime.worker.stop()
    action_id = (await factory.server(user, wait=None))["action"]["id"]
    await _until(lambda: runtime.notifier.listening)
    return runtime, action_id


async def _finish_elsewhere(runtime, action_id: int, **error: str) -> None:
    """Finish the action as another worker process would: claimed by it, then finished."""
    async with transaction(runtime.sessions) as session:
        await session.execute(
            update(Action)
            .where(Action.id == action_id)
            .values(status="running", claimed_by="elsewhere", started_at=clock.utcnow())
        )
    async with transaction(runtime.sessions) as session:
        if error:
            assert await queue.finish(session, action_id, "elsewhere", **error)
        else:
            assert await queue.finish_many(session, [action_id], "elsewhere") == {action_id}


async def test_a_notification_carries_the_finished_action(
    app, user, factory, databases, monkeypatch
):
    runtime, action_id = await _pending_action_listened_for(app, user, factory, databases)
    # Neither the batched re-check nor a read of notified ids may bring the row here.
    by_id: list[int] = []

    async def no_recheck() -> int:
        return 0

    monkeypatch.setattr(runtime.notifier, "recheck", no_recheck)
    monkeypatch.setattr(runtime.notifier, "notify", by_id.append)

    with runtime.notifier.watch(action_id) as waiter:
        await _finish_elsewhere(runtime, action_id)
        assert await waiter.wait(10)
        carried = waiter.take()
    assert by_id == []
    assert carried is not None
    async with runtime.read_sessions() as session:
        stored = await session.get(Action, action_id)
    assert ActionOut.from_action(carried) == ActionOut.from_action(stored)
    assert (carried.status, carried.finished_at) == ("success", stored.finished_at)


async def test_an_error_too_long_for_a_notification_is_read(app, user, factory, databases):
    runtime, action_id = await _pending_action_listened_for(app, user, factory, databases)
    message = "x" * (queue.MAX_NOTIFIED_ERROR_BYTES + 1)

    with runtime.notifier.watch(action_id) as waiter:
        await _finish_elsewhere(runtime, action_id, error_code="boom", error=message)
        assert await waiter.wait(10)
        carried = waiter.take()
    assert carried is not None  # read by the notifier, whole
    assert (carried.status, carried.error_code, carried.error) == ("error", "boom", message)


def test_a_notification_that_is_not_an_action_is_left_to_the_id_path(caplog):
    assert notifier.action_of("1234") is None
    assert notifier.action_of('{"id": 1}') is None  # not a whole row
    assert "could not be read" in caplog.text
