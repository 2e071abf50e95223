"""Queries on idempotency keys. Every write is guarded by the reservation's ``lock_token``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.idempotency.models import IdempotencyKey


async def find(session: AsyncSession, account_id: int, key: str) -> IdempotencyKey | None:
    return await session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.account_id == account_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )


async def insert(session: AsyncSession, **values: Any) -> int | None:
    """Insert a reservation; its id, or None when the account already has the key."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(IdempotencyKey)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["account_id", "key"])
        .returning(IdempotencyKey.id)
    )
    return await session.scalar(statement)


async def take_over(
    session: AsyncSession, row_id: int, *, now: datetime, expired_before: datetime, **values: Any
) -> bool:
    """Reserve a row that is free again: past its time to live, or abandoned (lock expired
    with no response). Of racing takers exactly one sees its row change."""
    abandoned = IdempotencyKey.response_status.is_(None) & (IdempotencyKey.locked_until <= now)
    result = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == row_id,
            (IdempotencyKey.created_at <= expired_before) | abandoned,
        )
        .values(**values, response_status=None, response_content_type=None, response_body=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record(
    session: AsyncSession,
    row_id: int,
    lock_token: str,
    *,
    status: int,
    content_type: str | None,
    body: bytes,
) -> bool:
    """Store the response on the reservation ``lock_token`` still holds, and unlock it.

    False when the reservation was taken over (its lock expired); then the caller must not
    commit, or the key would have two effects.
    """
    result = await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == row_id, IdempotencyKey.lock_token == lock_token)
        .values(
            response_status=status,
            response_content_type=content_type,
            response_body=body,
            lock_token=None,
            locked_until=None,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release(session: AsyncSession, row_id: int, lock_token: str) -> None:
    """Delete a reservation that will get no response, so its key is free at once."""
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.id == row_id,
            IdempotencyKey.lock_token == lock_token,
            IdempotencyKey.response_status.is_(None),
        )
    )


async def purge(session: AsyncSession, expired_before: datetime, limit: int) -> int:
    """Delete up to ``limit`` keys created before ``expired_before``; how many went."""
    oldest = (
        select(IdempotencyKey.id)
        .where(IdempotencyKey.created_at <= expired_before)
        .order_by(IdempotencyKey.id)
        .limit(limit)
    )
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.id.in_(oldest.scalar_subquery()))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
