"""Transactions: read-only requests don't queue behind a writer; writes keep the write lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import SERVER
from tests.statements import recorded_statements
from vpsorg.accounts.models import Account
from vpsorg.actions.models import Action
from vpsorg.billing.models import ServerCharge
from vpsorg.clock import utcnow
from vpsorg.db import (
    create_engine,
    insert_all,
    insert_new,
    session_factory,
    single_statement_write,
    transaction,
)
from vpsorg.runtime import Runtime


@pytest.fixture
def settings(settings):
    """No embedded worker: the transactions seen are the requests' own."""
    return settings.model_copy(update={"embedded_worker": False})


@asynccontextmanager
async def write_transaction_open(runtime: Runtime, account_id: int) -> AsyncIterator[None]:
    """A write transaction that has written and not yet committed: on SQLite it holds the
    database's write lock, on PostgreSQL the account's row lock."""
    async with write_transaction_open_on(runtime.engine, account_id):
        yield


@asynccontextmanager
async def write_transaction_open_on(engine: AsyncEngine, account_id: int) -> AsyncIterator[None]:
    async with transaction(session_factory(engine)) as session:
        await session.execute(
            update(Account).where(Account.id == account_id).values(name=Account.name)
        )
        yield


def record_begins(*engines: AsyncEngine) -> list[str]:
    begins: list[str] = []

    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", _record)
    return begins


async def test_reads_answer_while_a_write_transaction_is_open(app, client, user, factory):
    server = await factory.server(user, wait=None)
    runtime = app.state.runtime

    async with write_transaction_open(runtime, user.account_id):
        # Each would wait for the write lock (and fail after the busy timeout) if it took it.
        for path in [
            "/api/v1/servers/",
            f"/api/v1/servers/{server['id']}/",
            f"/api/v1/servers/{server['id']}/actions/",
            f"/api/v1/actions/{server['action']['id']}/?wait=0",
            "/api/v1/account/",
            "/api/v1/plans/",
        ]:
            response = await client.get(path, headers=user.headers)
            assert response.status_code == 200, (path, response.text)


async def test_on_sqlite_reads_begin_deferred_and_writes_immediate(app, client, user, databases):
    if databases.is_postgres:
        pytest.skip("SQLite's transaction modes")
    begins = record_begins(app.state.runtime.engine, app.state.runtime.read_engine)

    created = await client.post("/api/v1/servers/", json=SERVER, headers=user.headers)
    assert created.status_code == 201
    # The request's transaction, its audit record's, and the token's first use: all writes.
    await app.state.runtime.background_done()
    assert begins and set(begins) == {"BEGIN IMMEDIATE"}

    begins.clear()
    await client.get("/api/v1/servers/", headers=user.headers)
    await client.get(f"/api/v1/actions/{created.json()['action']['id']}/", headers=user.headers)
    assert begins and set(begins) == {"BEGIN"}


async def test_on_sqlite_a_process_queues_its_writers_for_one_connection(
    app, client, user, databases
):
    """While another process holds the write lock, this process's writers wait in line for
    its one write connection, in order, instead of all polling in SQLite's busy handler
    (which favours newcomers: a writer there could wait past a lease or the busy timeout).
    Reads go on meanwhile."""
    if databases.is_postgres:
        pytest.skip("SQLite's write lock")
    runtime = app.state.runtime
    other_process = create_engine(runtime.settings.database_url)
    finished: list[int] = []

    async def write(n: int) -> None:
        async with transaction(runtime.sessions) as session:
            await session.execute(
                update(Account).where(Account.id == user.account_id).values(name=f"w{n}")
            )
        finished.append(n)

    try:
        async with write_transaction_open_on(other_process, user.account_id):
            writers = []
            for n in range(8):
                writers.append(asyncio.create_task(write(n)))
                await asyncio.sleep(0.01)  # let each queue before the next (order, not time)
            assert runtime.engine.pool.checkedout() == 1  # one waits for the lock, 7 in line
            response = await client.get("/api/v1/account/", headers=user.headers)
            assert response.status_code == 200
            assert finished == []
        await asyncio.gather(*writers)
    finally:
        await other_process.dispose()
    assert finished == list(range(8))


async def test_on_postgresql_read_only_transactions_refuse_writes(app, user, databases):
    if not databases.is_postgres:
        pytest.skip("PostgreSQL's READ ONLY transactions")
    runtime = app.state.runtime
    async with transaction(runtime.read_sessions) as session:
        assert await session.scalar(text("SHOW transaction_read_only")) == "on"
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with transaction(runtime.read_sessions) as session:
            await session.execute(update(Account).values(name=Account.name))
    async with transaction(runtime.sessions) as session:
        assert await session.scalar(text("SHOW transaction_read_only")) == "off"


async def test_the_hot_reads_send_one_statement_and_no_begin(app, client, user, factory, databases):
    """A server's detail is one statement (the token checked in it); the list two."""
    server = await factory.server(user, wait=None)
    statements: list[str] = []

    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        keyword = statement.split(None, 1)[0].upper()
        if keyword != "BEGIN":  # SQLite's deferred BEGIN, in the process: no round trip
            statements.append(keyword)

    from vpsorg import db

    engine = db._statement_engine(app.state.runtime.read_engine)
    watched = engine if databases.is_postgres else app.state.runtime.read_engine
    event.listen(watched.sync_engine, "before_cursor_execute", _record)
    response = await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    assert response.status_code == 200
    assert statements == ["SELECT"]
    statements.clear()
    assert (await client.get("/api/v1/servers/", headers=user.headers)).status_code == 200
    assert statements == ["SELECT", "SELECT"]
    if databases.is_postgres:  # autocommit: no BEGIN, no COMMIT (SQLite's BEGIN is in-process)
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            raw = await connection.get_raw_connection()
            assert raw.driver_connection is not None
            assert not raw.driver_connection.is_in_transaction()


async def test_a_single_statement_write_is_one_statement_committed_by_itself(app, user, databases):
    runtime: Runtime = app.state.runtime
    rename = update(Account).where(Account.id == user.account_id).values(name="renamed")

    with recorded_statements(runtime) as statements:
        changed = await single_statement_write(
            runtime.engine, lambda connection: connection.execute(rename).rowcount
        )

    assert changed == 1
    sent = [s.split()[0] for s in statements]
    # PostgreSQL: autocommit, no BEGIN or COMMIT round trip; SQLite: the write lock first
    assert sent == (["UPDATE"] if databases.is_postgres else ["BEGIN", "UPDATE"])
    other = create_engine(str(runtime.engine.url))  # another process's view: committed
    try:
        async with other.connect() as connection:
            name = await connection.scalar(
                select(Account.name).where(Account.id == user.account_id)
            )
    finally:
        await other.dispose()
    assert name == "renamed"


async def test_a_connection_idle_past_its_ping_is_replaced_if_dead(
    databases, settings, monkeypatch
):
    if not databases.is_postgres:
        pytest.skip("PostgreSQL's connections")
    from vpsorg import db

    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        other = create_engine(settings.database_url)
        async with other.connect() as killer:
            await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await other.dispose()
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        async with engine.connect() as connection:  # pinged, found dead, reconnected
            assert await connection.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await engine.dispose()


async def test_insert_new_writes_one_row_with_its_defaults_and_leaves_the_session_alone(
    app, client, user
):
    created = await client.post("/api/v1/servers/", json=SERVER, headers=user.headers)
    server_id = created.json()["id"]
    runtime: Runtime = app.state.runtime
    statements = []
    event.listen(
        runtime.engine.sync_engine,
        "before_cursor_execute",
        lambda *args: statements.append(args[2]),
    )

    async with transaction(runtime.sessions) as session:
        action = await insert_new(
            session, Action(server_id=server_id, account_id=user.account_id, command="reboot")
        )
        charges = [
            ServerCharge(
                server_id=server_id,
                account_id=user.account_id,
                hour=h,
                starts_at=utcnow(),
                amount_micros=5,
                credit_entry_id=None,
            )
            for h in (7, 8)
        ]
        await insert_all(session, charges)
        assert action not in session and not session.new and not session.dirty

    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 2, statements
    # The object holds what its row holds: defaults were given here, not by the database.
    assert action.id is not None
    assert (action.status, action.progress, action.attempts) == ("pending", 0, 0)
    async with runtime.sessions() as session:
        row = await session.get(Action, action.id)
        assert row is not None
        assert (row.status, row.progress, row.attempts, row.created_at) == (
            "pending", 0, 0, action.created_at,
        )  # fmt: skip
        hours = await session.scalars(
            select(ServerCharge.hour)
            .where(ServerCharge.server_id == server_id)
            .order_by(ServerCharge.hour)
        )
        assert list(hours) == [0, 7, 8]  # the create's first hour, then the two inserted
