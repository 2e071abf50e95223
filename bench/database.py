"""A fresh database for one run: a SQLite file in the run's temp dir, or a new PostgreSQL database."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
