"""Audit queries: the token behind a request, the insert, and the newest-first listings."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.audit.models import Actor, AuditEvent
from vpsorg.auth.models import ApiToken
from vpsorg.auth.tokens import TOKEN_PATTERN, hash_token
from vpsorg.db import table_of


async def find_token(session: AsyncSession, token: str) -> tuple[int, int] | None:
    """(token id, account id) of a token, by its hash; one query, none for a malformed token.

    Revoked and expired tokens are found too: a request that revoked its own token was made
    with it. Whether the token was good for the request is the response's to say (a 401).
    """
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    query = select(ApiToken.id, ApiToken.account_id).where(ApiToken.token_hash == hash_token(token))
    row = (await session.execute(query)).first()
    return (row.id, row.account_id) if row else None


async def token_account(session: AsyncSession, token_id: int) -> int | None:
    return await session.scalar(select(ApiToken.account_id).where(ApiToken.id == token_id))


def add(session: AsyncSession, event: AuditEvent) -> None:
    session.add(event)


_EVENTS = table_of(AuditEvent)
_TOKEN = select(ApiToken.id).where(ApiToken.token_hash == bindparam("token_hash"))
_INSERT_AS_TOKEN = insert(_EVENTS).values(
    token_id=_TOKEN.scalar_subquery(),
    account_id=_TOKEN.with_only_columns(ApiToken.account_id).scalar_subquery(),
    actor=case((_TOKEN.exists(), Actor.TOKEN.value), else_=Actor.ANONYMOUS.value),
)
"""Built once: the event's other values are the statement's parameters."""


async def insert_as_token(session: AsyncSession, event: AuditEvent, token: str | None) -> None:
    """Insert an API request's event, made by the token's account as that token, looked up
    by the token's hash in the INSERT itself (one round trip); anonymous when the token is
    unknown or malformed. Revoked and expired tokens are found, as by ``find_token``."""
    values = {c.key: getattr(event, c.key) for c in _EVENTS.columns if c.key != "id"}
    if token is None or not TOKEN_PATTERN.fullmatch(token):
        await session.execute(insert(_EVENTS), values)
        return
    for column in ("token_id", "account_id", "actor"):
        del values[column]
    await session.execute(_INSERT_AS_TOKEN, {**values, "token_hash": hash_token(token)})


async def account_events(
    session: AsyncSession, account_id: int, offset: int, limit: int
) -> tuple[int, Sequence[AuditEvent]]:
    """The account's events, newest first, and how many it has."""
    condition = AuditEvent.account_id == account_id
    total = await session.scalar(select(func.count()).select_from(AuditEvent).where(condition))
    rows = await session.scalars(
        select(AuditEvent)
        .where(condition)
        .order_by(AuditEvent.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total or 0), rows.all()


async def latest(session: AsyncSession, account_id: int | None, limit: int) -> Sequence[AuditEvent]:
    """The newest ``limit`` events, of one account or of all (unauthenticated ones included)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if account_id is not None:
        query = query.where(AuditEvent.account_id == account_id)
    return (await session.scalars(query)).all()
