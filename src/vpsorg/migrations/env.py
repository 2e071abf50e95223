"""Alembic environment: runs migrations over vpsorg's async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

import vpsorg.models  # noqa: F401  (registers every table on Base.metadata)
from vpsorg.db import Base, create_engine

config = context.config
target_metadata = Base.metadata
PG_MIGRATION_LOCK = 7_410_001


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several processes may start at once; one migrates, the others wait.
            connection.execute(text(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})"))
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")


async def _main() -> None:
    engine = create_engine(
        config.get_main_option("sqlalchemy.url") or "", sqlite_foreign_keys=False
    )
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run 'vpsorg db upgrade'")
asyncio.run(_main())
