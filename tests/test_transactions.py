"""One transaction per API write: effect, stored response and audit event, committed once.

Transactions are seen from the engine: each connection's BEGIN, statements and COMMIT or
ROLLBACK (SQLAlchemy's events, so the same on SQLite, where a write transaction starts with
``BEGIN IMMEDIATE``, and on PostgreSQL).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from tests.audit.conftest import every_event
from tests.factories import SERVER, Factory, User
from tests.idempotency.conftest import count, effect_left, keyed
from tests.statements import recorded_statements
from vpsorg.db import transaction
from vpsorg.deps import REQUEST_TRANSACTION
from vpsorg.runtime import Runtime
from vpsorg.servers import service as servers
from vpsorg.transactions import RequestTransaction

URL = "/api/v1/servers/"
WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def settings(settings):
    """No embedded worker: the transactions seen are the requests' own."""
    return settings.model_copy(update={"embedded_worker": False})


@dataclass
class Transaction:
    statements: list[str] = field(default_factory=list)
    end: str | None = None

    @property
    def writes(self) -> bool:
        return any(s.startswith(WRITES) for s in self.statements)

    def has(self, prefix: str) -> bool:
        return any(s.startswith(prefix) for s in self.statements)


def record_transactions(runtime: Runtime) -> list[Transaction]:
    """The write engine's transactions from now on, in the order they began."""
    began: list[Transaction] = []
    open_on: dict[int, Transaction] = {}
    engine = runtime.engine.sync_engine

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        open_on[id(conn)] = Transaction()
        began.append(open_on[id(conn)])

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if id(conn) in open_on and not statement.startswith("BEGIN"):
            open_on[id(conn)].statements.append(" ".join(statement.split()))

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        open_on.pop(id(conn)).end = "COMMIT"

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Any) -> None:
        if id(conn) in open_on:
            open_on.pop(id(conn)).end = "ROLLBACK"

    return began


async def token_use_noted(client: httpx.AsyncClient, runtime: Runtime, user: User) -> None:
    """Use the token once and let its last use be written: no such write during the test."""
    assert (await client.get("/api/v1/account/", headers=user.headers)).status_code == 200
    await runtime.background_done()


async def test_a_create_commits_its_server_and_its_audit_event_once(app, client, user):
    runtime = app.state.runtime
    await token_use_noted(client, runtime, user)
    transactions = record_transactions(runtime)

    created = await client.post(URL, json=SERVER, headers=user.headers)

    assert created.status_code == 201, created.text
    [write] = [t for t in transactions if t.writes]
    assert write.has("INSERT INTO servers") and write.has("INSERT INTO audit_events")
    assert write.statements[-1].startswith("INSERT INTO audit_events")  # last, then COMMIT
    assert write.end == "COMMIT"
    [event] = await every_event(runtime)
    assert (event.status, event.resource) == (201, f"server:{created.json()['id']}")


async def test_a_keyed_create_commits_its_reservation_then_everything_else_once(app, client, user):
    runtime = app.state.runtime
    await token_use_noted(client, runtime, user)
    transactions = record_transactions(runtime)

    with recorded_statements(runtime) as statements:
        created = await client.post(URL, json=SERVER, headers=keyed(user, "once"))

    assert created.status_code == 201, created.text
    writes = [t for t in transactions if t.writes]
    if runtime.engine.dialect.name == "postgresql":
        # One statement in autocommit on the single statements' pool, committed as it ran
        # (tests/test_db.py), before the create's first: no transaction of its own.
        [write] = writes
        assert statements[0].startswith("INSERT INTO idempotency_keys"), statements
        assert not write.has("INSERT INTO idempotency_keys")
    else:
        reservation, write = writes
        assert reservation.has("INSERT INTO idempotency_keys") and reservation.end == "COMMIT"
        assert not reservation.has("INSERT INTO servers")
    assert write.has("INSERT INTO servers") and write.has("UPDATE idempotency_keys")
    assert write.statements[-1].startswith("INSERT INTO audit_events")
    assert write.end == "COMMIT"
    replayed = await client.post(URL, json=SERVER, headers=keyed(user, "once"))
    assert replayed.headers["idempotent-replayed"] == "true"
    assert [e.outcome for e in await every_event(runtime)] == ["replayed", "success"]


async def test_a_refused_create_writes_its_event_and_nothing_else(app, client, factory):
    runtime = app.state.runtime
    broke = await factory.account(credits=0)

    refused = await client.post(URL, json=SERVER, headers=broke.headers)

    assert refused.status_code == 402
    assert await effect_left(runtime) == {}
    [event] = await every_event(runtime)
    assert (event.status, event.outcome) == (402, "refused")
    assert event.error_code == "insufficient_credits"


async def test_a_create_that_fails_after_writing_commits_only_its_500_event(
    app, user, factory: Factory, monkeypatch
):
    runtime = app.state.runtime
    balance = await factory.balance(user)
    create = servers.create_server_locked

    async def create_then_fail(*args: Any, **kwargs: Any) -> Any:
        await create(*args, **kwargs)  # the server and its charge are written...
        raise RuntimeError("a bug")  # ...and the route never returns

    monkeypatch.setattr(servers, "create_server_locked", create_then_fail)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        failed = await client.post(URL, json=SERVER, headers=user.headers)

    assert failed.status_code == 500
    assert await effect_left(runtime) == {}
    assert await factory.balance(user) == balance
    [event] = await every_event(runtime)
    assert (event.status, event.outcome) == (500, "error")
    assert event.request_id == failed.headers["x-request-id"]


SQLITE_REFUSAL = [
    "CREATE TRIGGER refuse_event BEFORE INSERT ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events refused'); END"
]
POSTGRES_REFUSAL = [
    "CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_events refused'; END $$",
    "CREATE TRIGGER refuse_event BEFORE INSERT ON audit_events FOR EACH ROW "
    "EXECUTE FUNCTION refuse_event()",
]


async def test_an_audit_insert_the_database_refuses_fails_the_request_whole(
    app, user, caplog: pytest.LogCaptureFixture
):
    """PostgreSQL aborts the transaction (its COMMIT would roll back without an error), so
    the effect cannot be kept: the client hears 500, not a 201 for a server that is not
    there, and the key is free for its retry."""
    runtime = app.state.runtime
    postgres = runtime.engine.dialect.name == "postgresql"
    async with transaction(runtime.sessions) as session:
        for statement in POSTGRES_REFUSAL if postgres else SQLITE_REFUSAL:
            await session.execute(text(statement))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with caplog.at_level(logging.ERROR, logger="vpsorg.audit.service"):
            failed = await client.post(URL, json=SERVER, headers=keyed(user, "k"))

    assert failed.status_code == 500
    assert await effect_left(runtime) == {}
    assert await count(runtime, "idempotency_keys") == 0  # free for the retry
    request_id = failed.headers["x-request-id"]
    assert any(request_id in record.getMessage() for record in caplog.records), caplog.text


async def test_a_create_wakes_the_worker_after_its_commit_and_a_refusal_does_not(
    app, client, factory, monkeypatch
):
    runtime = app.state.runtime
    woken: list[bool] = []
    monkeypatch.setattr(runtime, "wake_worker", lambda: woken.append(True))
    user, broke = await factory.account(), await factory.account(credits=0)

    assert (await client.post(URL, json=SERVER, headers=broke.headers)).status_code == 402
    assert woken == []
    assert (await client.post(URL, json=SERVER, headers=user.headers)).status_code == 201
    assert woken == [True]


async def test_the_request_session_begins_at_its_first_use(app):
    """A write that opens a transaction of its own before it touches the request's must not
    wait for it (SQLite has one write connection)."""
    runtime = app.state.runtime
    seen: list[int] = []

    async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async with transaction(runtime.sessions) as own:
            seen.append(int(await own.scalar(text("SELECT count(*) FROM accounts"))))
        request = scope[REQUEST_TRANSACTION].session
        seen.append(int(await request.scalar(text("SELECT count(*) FROM servers"))))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    layer = RequestTransaction(route, trusted_proxies=[])
    transport = httpx.ASGITransport(app=_with_runtime(layer, app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/api/v1/servers/1/stop/")

    assert response.status_code == 204
    assert seen == [0, 0]
    [event] = await every_event(runtime)
    assert (event.path, event.status) == ("/api/v1/servers/1/stop/", 204)


def _with_runtime(layer: RequestTransaction, app: Any) -> Any:
    """``layer`` as an ASGI app whose scope names ``app`` (for its runtime)."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await layer({**scope, "app": app}, receive, send)

    return asgi
