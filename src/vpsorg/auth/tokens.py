"""API tokens: 32 random bytes, shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.auth.models import ApiToken
from vpsorg.clock import utcnow

TOKEN_PREFIX = "vps_"
TOKEN_PATTERN = re.compile(r"vps_[A-Za-z0-9_-]{43}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    session: AsyncSession, account_id: int, name: str = ""
) -> tuple[ApiToken, str]:
    """Issue a token for the account. Returns the row and the token (the only copy)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        account_id=account_id, name=name, token_hash=hash_token(token), prefix=token[:10]
    )
    session.add(row)
    await session.flush()
    return row, token


async def find_account(session: AsyncSession, token: str) -> Account | None:
    """The account a live token belongs to, or None; one query, as every request asks it."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    return await session.scalar(
        select(Account)
        .join(ApiToken, ApiToken.account_id == Account.id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    )


async def revoke_token(session: AsyncSession, token_or_id: str) -> bool:
    """Revoke by token id or by the token itself. True when a live token was revoked."""
    condition = (
        ApiToken.id == int(token_or_id)
        if token_or_id.isdigit()
        else ApiToken.token_hash == hash_token(token_or_id)
    )
    result = await session.execute(
        update(ApiToken).where(condition, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
