"""Audit queries: the token behind a request, the insert, and the newest-first listings."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.audit.models import AuditEvent
from vpsorg.auth.models import ApiToken
from vpsorg.auth.tokens import TOKEN_PATTERN, hash_token


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
