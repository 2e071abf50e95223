"""Queries on idempotency keys. Every write is guarded by the reservation's ``lock_token``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, String, and_, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.auth.models import ApiToken
from vpsorg.auth.tokens import CALLER_COLUMNS, Caller, is_live
from vpsorg.clock import utcnow
from vpsorg.db import table_of
from vpsorg.idempotency.models import IdempotencyKey


async def find(session: AsyncSession, account_id: int, key: str) -> IdempotencyKey | None:
    return await session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.account_id == account_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )


_KEYS = table_of(IdempotencyKey)
_CALLER_AND_KEY = (
    select(*CALLER_COLUMNS, *_KEYS.c)
    .select_from(ApiToken)
    .outerjoin(
        _KEYS, and_(_KEYS.c.account_id == ApiToken.account_id, _KEYS.c.key == bindparam("key"))
    )
    .where(*is_live())
)


def find_with_caller(
    connection: Connection, token_hash: str, key: str
) -> tuple[Caller, IdempotencyKey | None] | None:
    """The caller of a live token and its account's row for ``key`` (a new object in no
    session), in one statement outside any transaction; None when the token is not live."""
    parameters = {"token_hash": token_hash, "now": utcnow(), "key": key}
    row = connection.execute(_CALLER_AND_KEY, parameters).first()
    if row is None:
        return None
    mapping = row._mapping
    if mapping[_KEYS.c.id] is None:
        return Caller.from_row(row), None
    return Caller.from_row(row), IdempotencyKey(**{c.key: mapping[c] for c in _KEYS.c})


_INSERTS = {
    dialect: insert(_KEYS)
    .on_conflict_do_nothing(index_elements=["account_id", "key"])
    .returning(_KEYS.c.id)
    for dialect, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
"""A reservation's INSERT, built once per dialect; its values are the parameters."""


_RESERVED_FOR_CALLER = select(
    ApiToken.account_id,
    bindparam("new_key", type_=String()),
    bindparam("new_fingerprint", type_=String()),
    bindparam("new_created_at", type_=DateTime()),
    bindparam("new_lock_token", type_=String()),
    bindparam("new_locked_until", type_=DateTime()),
).where(*is_live())
_RESERVE_AS_CALLER = (
    postgresql.insert(_KEYS)
    .from_select(
        ["account_id", "key", "fingerprint", "created_at", "lock_token", "locked_until"],
        _RESERVED_FOR_CALLER,
    )
    .on_conflict_do_nothing(index_elements=["account_id", "key"])
    .returning(_KEYS.c.id)
)
"""PostgreSQL's only: SQLite looks a key up before it writes (see the middleware)."""


def insert_as_caller(
    connection: Connection, token_hash: str, key: str, **values: Any
) -> int | None:
    """Reserve ``key`` for the account of a live token, the token checked by the INSERT
    itself; the row's id, or None when the token is not live or the account has the key."""
    parameters = {
        "token_hash": token_hash,
        "now": utcnow(),
        "new_key": key,
        **{f"new_{name}": value for name, value in values.items()},
    }
    row_id: int | None = connection.execute(_RESERVE_AS_CALLER, parameters).scalar()
    return row_id


def insert(connection: Connection, /, **values: Any) -> int | None:
    """Insert a reservation; its id, or None when the account already has the key."""
    row_id: int | None = connection.execute(_INSERTS[connection.dialect.name], values).scalar()
    return row_id


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
    parameters = {
        "row_id": row_id,
        "held_by": lock_token,
        "status": status,
        "content_type": content_type,
        "body": body,
    }
    result = await session.execute(_RECORD, parameters)
    return bool(result.rowcount)  # type: ignore[attr-defined]


_RECORD = (
    update(_KEYS)
    .where(_KEYS.c.id == bindparam("row_id"), _KEYS.c.lock_token == bindparam("held_by"))
    .values(
        response_status=bindparam("status"),
        response_content_type=bindparam("content_type"),
        response_body=bindparam("body"),
        lock_token=None,
        locked_until=None,
    )
)


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
