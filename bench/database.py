"""A fresh database for one run: a SQLite file in the run's temp dir, or a new PostgreSQL database.

Also the one figure the benchmark reads from the database instead of the API: when actions
finished, to the microsecond (the API gives ``finished_at`` to the second).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from bench.errors import BenchError


@dataclass(frozen=True)
class Database:
    url: str
    """What ``VPSORG_DATABASE_URL`` is set to."""
    description: str


@contextmanager
def provision(db: str, workdir: Path) -> Iterator[Database]:
    """Yield a fresh, empty database; on PostgreSQL, drop it afterwards whatever happened."""
    if db == "sqlite":
        path = workdir / "vpsorg.db"
        yield Database(f"sqlite:///{path}", f"SQLite {sqlite3.sqlite_version} (file in {workdir})")
    else:
        with _postgres(db) as database:
            yield database


def _conninfo(url: URL) -> str:
    """A libpq URI for psycopg, whatever async driver the URL names."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def _postgres(admin_url: str) -> Iterator[Database]:
    admin = make_url(admin_url)
    name = f"vpsorg_bench_{os.getpid()}"
    try:
        with psycopg.connect(_conninfo(admin), autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            version = row[0] if row else "?"
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise BenchError(f"cannot create database {name} through {admin_url}: {exc}") from exc
    try:
        where = f"{admin.host or 'localhost'}:{admin.port or 5432}"
        yield Database(
            admin.set(database=name).render_as_string(hide_password=False),
            f"PostgreSQL {version} at {where}, database {name}",
        )
    finally:
        _drop(admin, name)


def _drop(admin: URL, name: str) -> None:
    try:
        with psycopg.connect(_conninfo(admin), autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg.Error as exc:
        print(f"bench: could not drop database {name}: {exc}", file=sys.stderr)


def finish_times(url: str, action_ids: list[int]) -> dict[int, float]:
    """When each of these actions finished, as Unix times, from ``actions.finished_at`` (naive UTC,
    stamped by the worker that ran it). Actions not finished are left out."""
    if not action_ids:
        return {}
    wanted = set(action_ids)
    since = min(action_ids)
    rows: list[tuple[int, datetime | str | None]]
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            rows = conn.execute(
                "SELECT id, finished_at FROM actions WHERE id >= ?", (since,)
            ).fetchall()
    else:
        with psycopg.connect(_conninfo(make_url(url)), connect_timeout=10) as conn:
            rows = conn.execute(
                "SELECT id, finished_at FROM actions WHERE id >= %s", (since,)
            ).fetchall()
    return {
        action_id: _as_datetime(at).replace(tzinfo=UTC).timestamp()
        for action_id, at in rows
        if action_id in wanted and at is not None
    }


def _as_datetime(value: datetime | str) -> datetime:
    """SQLite hands back the text SQLAlchemy stored (``2025-01-16 15:30:00.123456``)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def action_outcomes(url: str, action_ids: list[int]) -> dict[int, tuple[str, float | None]]:
    """Each of these actions' status and, once finished, when (a Unix time)."""
    if not action_ids:
        return {}
    wanted = set(action_ids)
    since = min(action_ids)
    rows: list[tuple[int, str, datetime | str | None]]
    query = "SELECT id, status, finished_at FROM actions WHERE id >= {}"
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            rows = conn.execute(query.format("?"), (since,)).fetchall()
    else:
        with psycopg.connect(_conninfo(make_url(url)), connect_timeout=10) as conn:
            rows = conn.execute(query.format("%s"), (since,)).fetchall()
    return {
        action_id: (
            status,
            None if at is None else _as_datetime(at).replace(tzinfo=UTC).timestamp(),
        )
        for action_id, status, at in rows
        if action_id in wanted
    }
