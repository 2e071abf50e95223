"""Engine, sessions and the declarative Base."""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    ColumnDefault,
    Connection,
    Engine,
    Insert,
    MetaData,
    Table,
    event,
    insert,
    inspect,
)
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.util import greenlet_spawn

from vpsorg.config import async_database_url

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


B = TypeVar("B", bound=Base)


async def insert_new(session: AsyncSession, row: B) -> B:
    """INSERT a new object's row with one Core statement and give the object its id.

    For the rows a create writes (its server, action, ledger line and charge): a flush runs
    the unit of work for each, a large part of a create's CPU. The object is not added to
    the session; it stays a new object with its id set, so nothing of it is flushed again.
    A column left unset gets its default here, as a flush would give it, so the object
    holds what its row holds.
    """
    table, values = _values(row)
    setattr(row, _insert_plan(type(row)).key, await session.scalar(_inserting(table), values))
    return row


async def insert_all(session: AsyncSession, rows: Sequence[Base]) -> None:
    """INSERT new objects' rows (of one table) in one statement, as ``insert_new`` does one,
    without giving them ids."""
    if not rows:
        return
    await session.execute(insert(_insert_plan(type(rows[0])).table), [_values(r)[1] for r in rows])


def _values(row: Base) -> tuple[Table, dict[str, Any]]:
    plan = _insert_plan(type(row))
    state = row.__dict__
    values: dict[str, Any] = {}
    for attribute, column, default in plan.columns:
        if attribute not in state and default is not None:
            setattr(row, attribute, default.arg(None) if default.is_callable else default.arg)
        if attribute in state:
            values[column] = state[attribute]
    return plan.table, values


class _InsertPlan(NamedTuple):
    table: Table
    key: str
    """The primary key's attribute."""
    columns: tuple[tuple[str, str, Any], ...]
    """For each other column: its attribute, its key, and its default (None: none)."""


@cache
def _insert_plan(model: type[Base]) -> _InsertPlan:
    """What ``insert_new`` needs of a model, read from its mapper once."""
    mapper = inspect(model)
    columns = []
    for attribute in mapper.column_attrs:
        column = attribute.columns[0]
        if column.primary_key:
            continue
        default = column.default if isinstance(column.default, ColumnDefault) else None
        columns.append((attribute.key, column.key, default))
    key = mapper.get_property_by_column(mapper.primary_key[0]).key
    return _InsertPlan(table_of(model), key, tuple(columns))


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements built once (no ORM plugin: Session.execute
    runs them as plain SQL)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


@cache
def _inserting(table: Table) -> Insert:
    (key,) = table.primary_key.columns
    return insert(table).returning(key)


class MissingExtra(RuntimeError):
    """The database URL needs a driver that is not installed (an optional extra)."""


POSTGRES_MODULES = {"psycopg": "psycopg", "asyncpg": "asyncpg"}


def require_driver_for(url: str) -> None:
    """Raise MissingExtra, naming the ``[postgres]`` extra, when PostgreSQL's driver is missing."""
    from importlib.util import find_spec

    scheme = async_database_url(url).partition("://")[0]
    module = scheme.partition("+")[2]
    if scheme.startswith("postgresql") and module in POSTGRES_MODULES and not find_spec(module):
        raise MissingExtra(
            f"a postgresql:// database needs the {POSTGRES_MODULES[module]} driver: install the "
            "[postgres] extra (pip install -e '.[postgres]' in a checkout)"
        )


READ_ONLY = "vpsorg_read_only"
"""Execution option of read-only sessions (``session_factory(engine, read_only=True)``)."""


def create_engine(url: str, *, sqlite_foreign_keys: bool = True, **kwargs: Any) -> AsyncEngine:
    """An async engine for a plain or async database URL.

    SQLite gets WAL, a busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every
    transaction that may write: writers queue on the database lock instead of failing with
    "database is locked" when a read transaction tries to become a write one. Read-only
    transactions get a plain (deferred) ``BEGIN``: with WAL they read a snapshot beside the
    writer instead of queueing for its lock.
    Migrations turn foreign keys off: SQLite alters tables by copying them.
    """
    require_driver_for(url)
    url = async_database_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine, sqlite_foreign_keys)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_async_engine(url, **kwargs)
    _ping_idle_connections(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 5.0
"""A pooled connection unused for this long is pinged before it is handed out."""


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Ping a connection before use when it has been idle, not every time.

    ``pool_pre_ping`` pinged at every checkout, and asyncpg's ping outside a transaction is
    three round trips (``BEGIN``, ``;``, ``ROLLBACK``): more than the read itself. A server
    that went away (a restart, an idle timeout) drops connections that sit idle, and those
    are still caught here; one that dies while its connections are busy fails the requests
    in flight once, as it would have anyway, and the pool then reconnects.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("a pooled connection failed its ping") from exc
        if not alive:
            raise DisconnectionError("a pooled connection failed its ping")


SQLITE_WRITE_CONNECTIONS = 1
"""Write connections per process on SQLite (see ``create_engines``)."""


def create_engines(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    """A process's engines: (for transactions that may write, for read-only ones).

    On PostgreSQL both are one engine. On SQLite, where one transaction at a time holds the
    database's write lock, the write engine has a single connection: a process's writers
    queue for it in order, holding nothing, and at most one of them waits for the lock in
    SQLite's busy handler. That handler is not a queue: waiters sleep and poll, the longer
    they have waited the less often (up to 100 ms), so with dozens of them (every request
    that may write, every claim loop) a writer could wait many seconds, past an action's
    lease or the busy timeout, while new arrivals went first. Reads have their own engine
    and pool, so they never queue behind writers.
    """
    url = async_database_url(url)
    if not url.startswith("sqlite"):
        engine = create_engine(url)
        return engine, engine
    writes = create_engine(url, pool_size=SQLITE_WRITE_CONNECTIONS, max_overflow=0)
    return writes, create_engine(url)


def _configure_sqlite(engine: AsyncEngine, foreign_keys: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def session_factory(
    engine: AsyncEngine, *, read_only: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; with ``read_only``, for transactions that never write.

    Read-only transactions don't take SQLite's write lock (see ``create_engine``), and
    PostgreSQL runs them ``READ ONLY``, so a write that slips into one fails loudly there
    (in the tests too) instead of racing on SQLite.
    """
    bind = engine.execution_options(**_read_only_options(engine)) if read_only else engine
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


def _read_only_options(engine: AsyncEngine) -> dict[str, Any]:
    if engine.dialect.name == "postgresql":
        return {READ_ONLY: True, "postgresql_readonly": True}
    return {READ_ONLY: True}


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits when the block succeeds, rolls back when it raises."""
    async with sessions() as session, session.begin():
        yield session


STATEMENT_POOL_SIZE = 10
"""Connections ``single_statement_reads`` keeps on PostgreSQL, and the most it opens: a read
waits for one rather than opening more. Connections past a pool's size are closed again when
returned, and making one (a TLS attempt, authentication) costs more CPU than the read it was
for: with 16 clients, the shared pool of 10 (+20 overflow) reconnected 50 times a second.
A read holds its connection for one statement, never two at once, so waiting cannot deadlock."""

_statement_engines: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = (
    weakref.WeakKeyDictionary()
)


def _statement_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine ``single_statement_reads`` uses beside ``engine``, made at its first use.

    On PostgreSQL an engine of its own whose connections are always in autocommit: an
    option on ``engine`` would switch each connection's isolation level at every checkout
    and back at every return (50 us a read). It is disposed with ``engine``. On SQLite,
    ``engine`` itself, with read-only transactions.
    """
    bind = _statement_engines.get(engine)
    if bind is not None:
        return bind
    if engine.dialect.name != "postgresql":
        bind = engine.execution_options(**_read_only_options(engine))
        _statement_engines[engine] = bind
        return bind
    bind = create_async_engine(
        engine.url, isolation_level="AUTOCOMMIT", pool_size=STATEMENT_POOL_SIZE, max_overflow=0
    )
    _ping_idle_connections(bind)
    _statement_engines[engine] = bind
    statements = bind.sync_engine

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _dispose_too(_engine: Any) -> None:
        _statement_engines.pop(engine, None)
        try:  # AsyncEngine.dispose runs this in its greenlet: the connections close
            statements.dispose()
        except Exception:  # a synchronous dispose of an async engine: let them go
            statements.dispose(close=False)

    return bind


T = TypeVar("T")


async def single_statement_reads(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """Run ``work``, reads of one statement each, on a connection outside any transaction.

    One statement reads one snapshot by itself, so on PostgreSQL it runs in autocommit: no
    ``BEGIN`` and ``COMMIT`` round trips (two of the four a detail read made). On SQLite the
    database is in the process and a deferred ``BEGIN`` costs no round trip: a read-only
    transaction, as ``session_factory(read_only=True)`` makes them.

    ``work`` gets a plain (synchronous) Connection and runs in one greenlet, as
    ``AsyncConnection.run_sync`` would: checkout, statement and checkin switch to the event
    loop only to wait for the database. Through ``AsyncConnection`` each of the three is a
    greenlet of its own, which cost a detail read 100 of its 260 us of SQLAlchemy CPU.
    """
    return await greenlet_spawn(_connected, _statement_engine(engine).sync_engine, work)


async def single_statement_write(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """Run ``work``, one statement that writes, committed by itself before this returns.

    On PostgreSQL it runs on ``single_statement_reads``' connections, in autocommit: one
    round trip where ``engine.begin()`` makes three (``BEGIN``, the statement, ``COMMIT``),
    each a greenlet switch through ``AsyncConnection``; so it is committed as it runs, and
    ``work`` is one statement, not several to undo together. On SQLite, in a write
    transaction of its own on ``engine`` (its one write connection).
    """
    if engine.dialect.name == "postgresql":
        return await greenlet_spawn(_connected, _statement_engine(engine).sync_engine, work)
    return await greenlet_spawn(_begun, engine.sync_engine, work)


def _connected(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as connection:
        return work(connection)


def _begun(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as connection:
        return work(connection)
