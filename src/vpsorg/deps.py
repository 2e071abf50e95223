"""Request dependencies: the database session, the current account, owned resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.auth.tokens import find_account_id
from vpsorg.errors import NotAuthenticated


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent."""
    runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        async with session.begin():
            yield session
        if session.info.get("actions_enqueued"):
            runtime.wake_worker()


DbSession = Annotated[AsyncSession, Depends(_session, scope="function")]


async def _current_account(request: Request, session: DbSession) -> Account:
    return await authenticate(request, session)


async def _current_account_briefly(request: Request) -> Account:
    """Authenticate in a short transaction of its own (for long-polling routes)."""
    async with request.app.state.runtime.sessions() as session:
        return await authenticate(request, session)


async def authenticate(request: Request, session: AsyncSession) -> Account:
    header = request.headers.get("authorization")
    if not header:
        raise NotAuthenticated("Authentication credentials were not provided.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Use 'Authorization: Bearer YOUR_API_TOKEN'.")
    account_id = await find_account_id(session, token.strip())
    account = await session.get(Account, account_id) if account_id is not None else None
    if account is None:
        raise NotAuthenticated("Invalid or revoked API token.")
    return account


CurrentAccount = Annotated[Account, Depends(_current_account)]
BrieflyAuthenticatedAccount = Annotated[Account, Depends(_current_account_briefly)]
"""Like CurrentAccount, but holds no database connection for the rest of the request."""
