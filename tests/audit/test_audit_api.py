"""Every write through the API is recorded, with who, from where, what, and how it ended."""

from __future__ import annotations

import logging

import pytest

from tests.audit.conftest import events, every_event
from tests.factories import SERVER, Factory
from vpsorg.audit import repository

MADE_UP_TOKEN = "vps_" + "x" * 43


async def test_create_stop_patch_delete_are_recorded_with_their_fields(client, user, factory):
    created = await client.post("/api/v1/servers/", json=SERVER, headers=user.headers)
    assert created.status_code == 201, created.text
    server_id = created.json()["id"]
    await factory.wait_for(user, server_id, "active")
    stopped = await client.post(f"/api/v1/servers/{server_id}/stop/", headers=user.headers)
    await factory.wait_for(user, server_id, "stopped")
    patched = await client.patch(
        f"/api/v1/servers/{server_id}/", json={"name": "renamed"}, headers=user.headers
    )
    deleted = await client.delete(f"/api/v1/servers/{server_id}/", headers=user.headers)
    assert (stopped.status_code, patched.status_code, deleted.status_code) == (200, 200, 204)

    delete, patch, stop, create = await events(client, user)

    assert create["method"] == "POST"
    assert create["path"] == "/api/v1/servers/"
    assert create["resource"] == f"server:{server_id}"
    assert create["action_id"] == created.json()["action"]["id"]
    assert create["request_id"] == created.headers["x-request-id"]
    assert create["client_address"] == "127.0.0.1"  # httpx's ASGI transport
    assert create["actor"] == "token"
    assert isinstance(create["token_id"], int)
    assert (create["status"], create["outcome"], create["error_code"]) == (201, "success", None)
    assert create["created_at"].endswith("Z")

    assert stop["path"] == f"/api/v1/servers/{server_id}/stop/"
    assert stop["resource"] == f"server:{server_id}"
    assert stop["action_id"] == stopped.json()["action"]["id"]
    assert stop["request_id"] == stopped.headers["x-request-id"]

    assert (patch["method"], patch["resource"], patch["action_id"]) == (
        "PATCH", f"server:{server_id}", None
    )  # fmt: skip
    assert patch["request_id"] == patched.headers["x-request-id"]

    assert (delete["method"], delete["status"], delete["outcome"]) == ("DELETE", 204, "success")
    assert delete["resource"] == f"server:{server_id}"
    assert delete["request_id"] == deleted.headers["x-request-id"]


async def test_a_request_id_sent_by_the_client_is_the_one_recorded(client, user):
    headers = {**user.headers, "X-Request-ID": "client-chosen-42"}
    await client.patch("/api/v1/servers/999/", json={"name": "x"}, headers=headers)

    [event] = await events(client, user)

    assert event["request_id"] == "client-chosen-42"


async def test_refusals_are_recorded_with_their_code(client, factory):
    broke = await factory.account(credits=0)
    unpaid = await client.post("/api/v1/servers/", json=SERVER, headers=broke.headers)
    invalid = await client.post(
        "/api/v1/servers/", json={**SERVER, "name": "-bad-"}, headers=broke.headers
    )
    assert (unpaid.status_code, invalid.status_code) == (402, 400)

    bad, payment = await events(client, broke)

    assert (payment["status"], payment["outcome"]) == (402, "refused")
    assert payment["error_code"] == "insufficient_credits"
    assert payment["resource"] == "server"  # nothing was created
    assert payment["action_id"] is None
    assert (bad["status"], bad["outcome"], bad["error_code"]) == (
        400, "refused", "invalid_parameters"
    )  # fmt: skip


async def test_an_invalid_token_write_is_recorded_with_no_account(app, client, user):
    headers = {**user.headers, "Authorization": f"Bearer {MADE_UP_TOKEN}"}
    response = await client.post("/api/v1/servers/", json=SERVER, headers=headers)
    assert response.status_code == 401

    [event] = await every_event(app.state.runtime)

    assert event.account_id is None and event.token_id is None
    assert event.actor == "anonymous"
    assert (event.status, event.outcome, event.error_code) == (401, "refused", "not_authenticated")
    assert event.request_id == response.headers["x-request-id"]
    assert await events(client, user) == []


async def test_reads_record_nothing(app, client, user, factory):
    await factory.server(user, wait=None)
    before = len(await every_event(app.state.runtime))

    for path in ("/api/v1/servers/", "/api/v1/account/", "/api/v1/servers/1/", "/api/v1/plans/"):
        assert (await client.get(path, headers=user.headers)).status_code == 200
    await client.head("/api/v1/servers/", headers=user.headers)
    await client.options("/api/v1/servers/", headers=user.headers)
    await client.get("/api/v1/account/events/", headers=user.headers)

    assert len(await every_event(app.state.runtime)) == before == 1


async def test_customers_see_only_their_own_events(client, factory: Factory):
    alice = await factory.account(name="alice")
    bob = await factory.account(name="bob")
    await client.patch("/api/v1/servers/1/", json={"name": "a"}, headers=alice.headers)
    await client.patch("/api/v1/servers/2/", json={"name": "b"}, headers=bob.headers)
    await client.patch("/api/v1/servers/3/", json={"name": "b"}, headers=bob.headers)

    assert [e["resource"] for e in await events(client, alice)] == ["server:1"]
    assert [e["resource"] for e in await events(client, bob)] == ["server:3", "server:2"]
    anonymous = await client.get("/api/v1/account/events/")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"


async def test_events_are_paginated_newest_first(client, user):
    for server_id in range(1, 6):
        await client.patch(
            f"/api/v1/servers/{server_id}/", json={"name": "x"}, headers=user.headers
        )

    url = "/api/v1/account/events/"
    first = (await client.get(f"{url}?per_page=2", headers=user.headers)).json()
    second = (await client.get(first["next"], headers=user.headers)).json()
    last = (await client.get(second["next"], headers=user.headers)).json()

    assert first["count"] == 5 and first["previous"] is None
    resources = [e["resource"] for page in (first, second, last) for e in page["results"]]
    assert resources == [f"server:{n}" for n in (5, 4, 3, 2, 1)]
    ids = [e["id"] for page in (first, second, last) for e in page["results"]]
    assert ids == sorted(ids, reverse=True)
    assert last["next"] is None


async def test_an_idempotent_replay_is_recorded_as_replayed(client, user):
    headers = {**user.headers, "Idempotency-Key": "create-once"}
    first = await client.post("/api/v1/servers/", json=SERVER, headers=headers)
    again = await client.post("/api/v1/servers/", json=SERVER, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"

    replay, original = await events(client, user)

    assert (original["outcome"], replay["outcome"]) == ("success", "replayed")
    assert replay["status"] == 201
    assert replay["resource"] == original["resource"] == f"server:{first.json()['id']}"
    assert replay["action_id"] == original["action_id"] == first.json()["action"]["id"]
    assert replay["request_id"] == again.headers["x-request-id"] != original["request_id"]


@pytest.mark.parametrize("key", [None, "k"])
async def test_a_failed_insert_is_logged_and_the_request_answered_with_its_effect(
    app, client, user, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, key
):
    async def broken(session: object, event: object, token: object) -> None:
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(repository, "insert_as_token", broken)
    headers = {**user.headers, "Idempotency-Key": key} if key else user.headers
    with caplog.at_level(logging.ERROR, logger="vpsorg.audit.service"):
        response = await client.post("/api/v1/servers/", json=SERVER, headers=headers)

    assert response.status_code == 201
    request_id = response.headers["x-request-id"]
    assert any(request_id in record.getMessage() for record in caplog.records), caplog.text
    # The event is lost, not the server (nor, with a key, its stored response).
    server_id = response.json()["id"]
    found = await client.get(f"/api/v1/servers/{server_id}/", headers=user.headers)
    assert found.status_code == 200
    if key:
        again = await client.post("/api/v1/servers/", json=SERVER, headers=headers)
        assert (again.headers["idempotent-replayed"], again.json()["id"]) == ("true", server_id)
    assert await every_event(app.state.runtime) == []
