"""What a token may do with tokens: mint weaker or equal ones, revoke the account's own."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.auth import tokens
from vpsorg.auth.models import ApiToken, TokenScope
from vpsorg.auth.schemas import TokenCreate
from vpsorg.auth.tokens import Credential
from vpsorg.clock import isoformat, utcnow
from vpsorg.errors import InsufficientScope, InvalidParameters, NotFound


async def mint(
    session: AsyncSession, caller: Credential, data: TokenCreate
) -> tuple[ApiToken, str]:
    """A new token of the caller's account, never with more scope or a later expiry."""
    scope = TokenScope(data.scope)
    if scope == TokenScope.WRITE and not caller.may_write:
        raise InsufficientScope("A read token can't make a write token.")
    limit = caller.token.expires_at
    expires_at = utcnow() + timedelta(seconds=data.expires_in) if data.expires_in else limit
    if limit is not None and (expires_at is None or expires_at > limit):
        raise InvalidParameters.field(
            "expires_in",
            f"A token can't outlive the token that makes it (it expires {isoformat(limit)}).",
        )
    return await tokens.create_token(
        session, caller.account.id, data.name, scope=scope, expires_at=expires_at
    )


async def revoke(session: AsyncSession, caller: Credential, token_id: int) -> None:
    if not await tokens.revoke_token_id(session, token_id, caller.account.id):
        raise NotFound(f"Token {token_id} not found.")
