"""Idempotency-Key through HTTP: replays, reuse, concurrency, errors, expiry, accounts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.audit.conftest import every_event
from tests.factories import SERVER
from tests.idempotency.conftest import count, effect_left, keyed
from tests.statements import recorded_statements
from vpsorg.accounts.service import to_micros
from vpsorg.billing import service as billing
from vpsorg.db import transaction
from vpsorg.errors import CapacityUnavailable
from vpsorg.idempotency import service as idempotency
from vpsorg.idempotency.models import IdempotencyKey
from vpsorg.servers import service as servers

URL = "/api/v1/servers/"


async def test_a_retried_create_gets_the_first_response_and_makes_one_billed_server(
    app, client, user, factory
):
    before = await factory.balance(user)
    first = await client.post(URL, json=SERVER, headers=keyed(user, "create-1"))
    again = await client.post(URL, json=SERVER, headers=keyed(user, "create-1"))

    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content  # byte for byte
    assert again.headers["content-type"] == first.headers["content-type"]
    runtime = app.state.runtime
    assert await count(runtime, "servers") == 1
    assert await count(runtime, "server_charges") == 1
    assert before - await factory.balance(user) == to_micros(0.036)  # one first hour (+20%)


async def test_key_order_and_whitespace_of_the_body_do_not_matter(app, client, user):
    first = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
    reordered = json.dumps(dict(reversed(SERVER.items())), indent=2)
    again = await client.post(URL, content=reordered, headers=keyed(user, "k"))
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert await count(app.state.runtime, "servers") == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", URL, {**SERVER, "name": "another"}),
        ("POST", "/api/v1/ssh-keys/", {"name": "k", "public_key": "x"}),
        ("DELETE", f"{URL}1/", None),
    ],
)
async def test_the_same_key_for_another_request_is_400(app, client, user, method, path, body):
    assert (await client.post(URL, json=SERVER, headers=keyed(user, "k"))).status_code == 201
    reused = await client.request(method, path, json=body, headers=keyed(user, "k"))
    assert reused.status_code == 400
    assert reused.json()["code"] == "idempotency_key_reused"
    assert await count(app.state.runtime, "servers", "deleted_at IS NULL") == 1


async def test_a_repeat_while_the_first_is_in_flight_is_409(app, client, user, monkeypatch):
    in_transaction, finish = asyncio.Event(), asyncio.Event()
    create = servers.create_server_locked

    async def slow_create(*args: Any, **kwargs: Any) -> Any:
        made = await create(*args, **kwargs)  # the server and its charge are written...
        in_transaction.set()
        await finish.wait()  # ...and not yet committed
        return made

    monkeypatch.setattr(servers, "create_server_locked", slow_create)
    first = asyncio.create_task(client.post(URL, json=SERVER, headers=keyed(user, "k")))
    await asyncio.wait_for(in_transaction.wait(), 10)
    second, other_body = await asyncio.gather(
        client.post(URL, json=SERVER, headers=keyed(user, "k")),
        client.post(URL, json={**SERVER, "name": "x"}, headers=keyed(user, "k")),
    )
    finish.set()

    assert (await first).status_code == 201
    assert second.status_code == 409
    assert second.json()["code"] == "idempotency_key_in_use"
    assert other_body.status_code == 400
    third = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
    assert third.headers["idempotent-replayed"] == "true"
    assert third.json()["id"] == (await first).json()["id"]
    assert await count(app.state.runtime, "servers") == 1


async def test_a_4xx_is_stored_and_replayed_even_after_the_cause_is_gone(app, client, factory):
    poor = await factory.account(credits=0)
    refused = await client.post(URL, json=SERVER, headers=keyed(poor, "k"))
    assert refused.status_code == 402
    async with transaction(app.state.runtime.sessions) as session:
        await billing.credit(session, poor.account_id, to_micros(100))

    again = await client.post(URL, json=SERVER, headers=keyed(poor, "k"))
    assert again.status_code == 402
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == refused.content
    assert await count(app.state.runtime, "servers") == 0
    assert (await client.post(URL, json=SERVER, headers=keyed(poor, "new"))).status_code == 201


async def test_invalid_parameters_are_stored_too(app, client, user):
    bad = {**SERVER, "name": "-bad-"}
    first = await client.post(URL, json=bad, headers=keyed(user, "k"))
    again = await client.post(URL, json=bad, headers=keyed(user, "k"))
    assert first.status_code == again.status_code == 400
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content


async def test_a_5xx_is_not_stored_and_the_key_is_free_again(app, client, user, monkeypatch):
    async def no_capacity(*_args: Any, **_kwargs: Any) -> Any:
        raise CapacityUnavailable("No host has room for this plan.")

    with monkeypatch.context() as patched:
        patched.setattr(servers, "create_server_locked", no_capacity)
        failed = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
    assert failed.status_code == 503
    assert await count(app.state.runtime, "idempotency_keys") == 0

    retried = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers


async def test_an_unexpected_error_is_not_stored(app, user, monkeypatch):
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with monkeypatch.context() as patched:
            patched.setattr(servers, "create_server_locked", broken)
            failed = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
        assert failed.status_code == 500
        retried = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
    assert retried.status_code == 201
    assert await count(app.state.runtime, "servers") == 1


async def test_a_reservation_without_response_is_free_once_its_lock_expires(
    app, client, user, later
):
    runtime = app.state.runtime
    body = json.dumps(SERVER).encode()
    print_ = idempotency.fingerprint("POST", URL, body)
    # A first attempt reserved the key and died before answering.
    await idempotency.reserve(runtime.sessions, user.account_id, "k", print_, lock_seconds=60)

    held = await client.post(URL, content=body, headers=keyed(user, "k"))
    assert held.status_code == 409
    later.advance(seconds=61)
    taken = await client.post(URL, content=body, headers=keyed(user, "k"))
    assert taken.status_code == 201
    assert "idempotent-replayed" not in taken.headers
    assert await count(runtime, "servers") == 1


async def test_an_abandoned_key_may_be_taken_by_another_request(app, client, user, later):
    runtime = app.state.runtime
    print_ = idempotency.fingerprint("POST", URL, b'{"other": 1}')
    await idempotency.reserve(runtime.sessions, user.account_id, "k", print_, lock_seconds=60)
    later.advance(seconds=61)
    assert (await client.post(URL, json=SERVER, headers=keyed(user, "k"))).status_code == 201


async def test_stored_responses_live_24_hours_then_are_purged(app, client, user, later):
    runtime = app.state.runtime
    first = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
    later.advance(hours=23, minutes=59)
    assert (await client.post(URL, json=SERVER, headers=keyed(user, "k"))).json() == first.json()
    assert await idempotency.purge_expired(runtime.sessions) == 0

    later.advance(minutes=2)
    assert await idempotency.purge_expired(runtime.sessions) == 1
    fresh = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
    assert fresh.status_code == 201
    assert fresh.json()["id"] != first.json()["id"]


async def test_an_expired_key_is_taken_over_before_the_purge(app, client, user, later):
    first = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
    later.advance(hours=25)
    fresh = await client.post(URL, json={**SERVER, "name": "new"}, headers=keyed(user, "k"))
    assert fresh.status_code == 201
    assert fresh.json()["id"] != first.json()["id"]


async def test_keys_belong_to_one_account(app, client, factory):
    alice, bob = await factory.account(name="alice"), await factory.account(name="bob")
    a = await client.post(URL, json=SERVER, headers=keyed(alice, "same"))
    b = await client.post(URL, json=SERVER, headers=keyed(bob, "same"))
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert await count(app.state.runtime, "servers") == 2


async def test_power_patch_and_delete_replay(app, client, user, factory):
    server = await factory.server(user)
    base = f"{URL}{server['id']}/"
    runtime = app.state.runtime

    stop = await client.post(f"{base}stop/", headers=keyed(user, "stop"))
    stop_again = await client.post(f"{base}stop/", headers=keyed(user, "stop"))
    assert stop.status_code == stop_again.status_code == 200
    assert stop_again.content == stop.content
    assert await count(runtime, "actions", "command = 'stop'") == 1

    patch = await client.patch(base, json={"name": "renamed"}, headers=keyed(user, "patch"))
    patch_again = await client.patch(base, json={"name": "renamed"}, headers=keyed(user, "patch"))
    assert patch.status_code == patch_again.status_code == 200
    assert patch_again.headers["idempotent-replayed"] == "true"
    other = await client.patch(base, json={"name": "other"}, headers=keyed(user, "patch"))
    assert other.json()["code"] == "idempotency_key_reused"

    gone = await client.delete(base, headers=keyed(user, "delete"))
    gone_again = await client.delete(base, headers=keyed(user, "delete"))
    assert gone.status_code == gone_again.status_code == 204
    assert gone_again.headers["idempotent-replayed"] == "true"
    assert gone_again.content == b""
    assert (await client.delete(base, headers=user.headers)).status_code == 404
    assert await count(runtime, "actions", "command = 'delete'") == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there", "\x7f"])
async def test_a_key_must_be_1_to_255_printable_ascii_characters(app, client, user, key):
    headers = {**user.headers, "Idempotency-Key": key.encode("latin-1")}
    response = await client.post(URL, json=SERVER, headers=headers)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_parameters"
    assert list(body["errors"]) == ["Idempotency-Key"]
    assert await count(app.state.runtime, "servers") == 0


async def test_255_characters_and_spaces_are_fine(client, user):
    key = ("order 42 " * 40)[:255]
    assert (await client.post(URL, json=SERVER, headers=keyed(user, key))).status_code == 201


async def test_without_the_header_nothing_is_stored(app, client, user):
    first = await client.post(URL, json=SERVER, headers=user.headers)
    second = await client.post(URL, json=SERVER, headers=user.headers)
    assert first.json()["id"] != second.json()["id"]
    assert "idempotent-replayed" not in second.headers
    assert await count(app.state.runtime, "idempotency_keys") == 0


async def test_an_unauthenticated_request_is_401_and_stores_nothing(app, client):
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    response = await client.post(URL, json=SERVER, headers=headers)
    assert response.status_code == 401
    assert await count(app.state.runtime, "idempotency_keys") == 0


async def test_a_revoked_token_is_401_and_reserves_nothing(app, client, user):
    revoked = await client.delete("/api/v1/tokens/1/", headers=user.headers)
    assert revoked.status_code == 204, revoked.text
    response = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
    assert response.status_code == 401
    assert await count(app.state.runtime, "idempotency_keys") == 0


async def test_a_new_key_is_reserved_by_one_statement_before_the_request(app, client, user):
    """On PostgreSQL the INSERT checks the token itself; SQLite looks the key up first."""
    runtime = app.state.runtime
    with recorded_statements(runtime) as statements:
        response = await client.post(URL, json=SERVER, headers=keyed(user, "new"))
    assert response.status_code == 201
    keys = [s for s in statements if "idempotency_keys" in s]
    if runtime.engine.dialect.name == "postgresql":
        assert keys[0].startswith("INSERT INTO idempotency_keys"), keys
        assert "api_tokens" in keys[0]
        assert [s.split()[0] for s in keys] == ["INSERT", "UPDATE"], keys  # reserve, record
    else:
        assert [s.split()[0] for s in keys] == ["SELECT", "INSERT", "UPDATE"], keys


async def test_get_ignores_the_header(client, user):
    response = await client.get(URL, headers=keyed(user, "k"))
    assert response.status_code == 200
    assert "idempotent-replayed" not in response.headers


async def test_a_request_that_outlived_its_lock_does_nothing_and_says_so(
    app, client, user, monkeypatch
):
    create = servers.create_server_locked

    async def create_then_lose_the_key(session: AsyncSession, *args: Any) -> Any:
        made = await create(session, *args)
        # A retry took the expired reservation over (here in this transaction: on SQLite
        # another one would wait for this one's write lock).
        await session.execute(update(IdempotencyKey).values(lock_token="the retry's"))
        return made

    monkeypatch.setattr(servers, "create_server_locked", create_then_lose_the_key)
    response = await client.post(URL, json=SERVER, headers=keyed(user, "k"))

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_use"
    assert await effect_left(app.state.runtime) == {}
    [event] = await every_event(app.state.runtime)
    assert (event.status, event.outcome) == (409, "refused")
    assert event.error_code == "idempotency_key_in_use"
