"""API tokens: 32 random bytes, shown once, stored as SHA-256; scoped, optionally expiring."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.auth.models import ApiToken, TokenScope
from vpsorg.clock import utcnow

TOKEN_PREFIX = "vps_"
TOKEN_PATTERN = re.compile(r"vps_[A-Za-z0-9_-]{43}")
LAST_USED_EVERY = timedelta(minutes=1)
"""``last_used_at`` moves at most this often: one write a minute per busy token, not per request."""


@dataclass(frozen=True)
class Credential:
    """Who is calling: the account, and the token it called with."""

    account: Account
    token: ApiToken

    @property
    def may_write(self) -> bool:
        return self.token.scope == TokenScope.WRITE


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    session: AsyncSession,
    account_id: int,
    name: str = "",
    *,
    scope: TokenScope = TokenScope.WRITE,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token for the account. Returns the row and the token (the only copy)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        account_id=account_id,
        name=name,
        token_hash=hash_token(token),
        prefix=token[:10],
        scope=scope,
        expires_at=expires_at,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row, token


def token_hash_of(token: str) -> str | None:
    """The stored hash of a token of the right shape; None for anything else (never looked up)."""
    return hash_token(token) if TOKEN_PATTERN.fullmatch(token) else None


def is_live() -> tuple[ColumnElement[bool], ...]:
    """The token named by the ``token_hash`` parameter, not revoked, not expired at ``now``.

    With bind parameters, so a statement built once from it is compiled once. Every request
    asks it of the database: a revoked token stops working at once.
    """
    return (
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > bindparam("now")),
    )


CALLER_COLUMNS = (
    ApiToken.id.label("token_id"),
    ApiToken.account_id.label("token_account_id"),
    ApiToken.scope.label("token_scope"),
    ApiToken.last_used_at.label("token_last_used_at"),
)
"""What a read needs of its caller's token; joined into other statements (see servers)."""

_LIVE_TOKEN = select(*CALLER_COLUMNS).where(*is_live())


@dataclass(frozen=True)
class Caller:
    """Who is calling, as a read sees it: the account id and the token, without ORM objects."""

    account_id: int
    token_id: int
    scope: str
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, row: Row[*tuple[Any, ...]]) -> Caller:
        r = row._mapping
        return cls(r["token_account_id"], r["token_id"], r["token_scope"], r["token_last_used_at"])


def find_caller(connection: Connection, token_hash: str) -> Caller | None:
    """The live token's caller, in one statement (no ORM, no transaction needed; see
    ``db.single_statement_reads``)."""
    row = connection.execute(_LIVE_TOKEN, {"token_hash": token_hash, "now": utcnow()}).first()
    return None if row is None else Caller.from_row(row)


async def find_credential(session: AsyncSession, token: str) -> Credential | None:
    """The account and token of a live (not revoked, not expired) token; one query, as every
    request asks it."""
    token_hash = token_hash_of(token)
    if token_hash is None:
        return None
    row = (
        await session.execute(
            select(Account, ApiToken)
            .join(ApiToken, ApiToken.account_id == Account.id)
            .where(*is_live()),
            {"token_hash": token_hash, "now": utcnow()},
        )
    ).one_or_none()
    return None if row is None else Credential(row[0], row[1])


def due_for_last_used(token: ApiToken | Caller, now: datetime) -> bool:
    return token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY


async def record_use(session: AsyncSession, token_id: int, now: datetime) -> None:
    """Move ``last_used_at`` on, unless another request did within the minute."""
    await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_EVERY),
        )
        .values(last_used_at=now)
    )


async def list_tokens(
    session: AsyncSession, account_id: int, offset: int = 0, limit: int = 1000
) -> tuple[int, Sequence[ApiToken]]:
    """The account's live tokens, newest first (revoked and expired ones are not listed)."""
    condition = (
        ApiToken.account_id == account_id,
        ApiToken.revoked_at.is_(None),
        or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow()),
    )
    total = await session.scalar(select(func.count()).select_from(ApiToken).where(*condition))
    rows = await session.scalars(
        select(ApiToken).where(*condition).order_by(ApiToken.id.desc()).offset(offset).limit(limit)
    )
    return int(total or 0), rows.all()


async def revoke_token_id(session: AsyncSession, token_id: int, account_id: int | None) -> bool:
    """Revoke a live token by id (only the account's own, when ``account_id`` is given)."""
    condition = [ApiToken.id == token_id, ApiToken.revoked_at.is_(None)]
    if account_id is not None:
        condition.append(ApiToken.account_id == account_id)
    result = await session.execute(update(ApiToken).where(*condition).values(revoked_at=utcnow()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_token(session: AsyncSession, token: str) -> bool:
    """Revoke by the token itself. True when a live token was revoked."""
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
