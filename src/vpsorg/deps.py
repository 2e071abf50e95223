"""Request dependencies: the database session, the current account, owned resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vpsorg import logs
from vpsorg.accounts.models import Account
from vpsorg.auth.tokens import Credential, find_credential
from vpsorg.errors import InsufficientScope, NotAuthenticated

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Requests that only read. Their transactions are read-only: on SQLite they don't queue
for the write lock that every other request's transaction takes at its start."""


def _sessions_for(request: Request) -> async_sessionmaker[AsyncSession]:
    runtime: Runtime = request.app.state.runtime
    return runtime.read_sessions if request.method in READ_METHODS else runtime.sessions


REQUEST_TRANSACTION = "vpsorg.request_transaction"
"""ASGI scope key of a transaction opened around the whole request by an outer layer.

Requests with an ``Idempotency-Key`` get one (``idempotency.middleware``): that layer
commits it after the response is rendered, with the response stored in it.
"""


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent.

    Read-only for GET and HEAD (see ``READ_METHODS``); every other method may write.
    """
    held: AsyncSession | None = request.scope.get(REQUEST_TRANSACTION)
    if held is not None:
        yield held  # the layer that opened it commits or rolls it back
        return
    async with _sessions_for(request)() as session:
        async with session.begin():
            yield session
        after_commit(request.app.state.runtime, session)


def after_commit(runtime: Runtime, session: AsyncSession) -> None:
    """What follows a request's commit: wake the worker for the actions it queued."""
    if session.info.get("actions_enqueued"):
        runtime.wake_worker()


DbSession = Annotated[AsyncSession, Depends(_session, scope="function")]


async def _current_credential(request: Request, session: DbSession) -> Credential:
    """The caller, checked: a read token may not change anything."""
    credential = await authenticate(request, session)
    if request.method not in READ_METHODS and not credential.may_write:
        raise InsufficientScope(
            "This token may only read (scope 'read'); changes need a token with scope 'write'."
        )
    return credential


async def _current_account(
    credential: Annotated[Credential, Depends(_current_credential)],
) -> Account:
    return credential.account


async def _current_account_briefly(request: Request) -> Account:
    """Authenticate in a short read-only transaction of its own (for long-polling routes)."""
    async with request.app.state.runtime.read_sessions() as session:
        return (await authenticate(request, session)).account


async def authenticate(request: Request, session: AsyncSession) -> Credential:
    """The Bearer token's account and token, or 401; notes the token's use (see runtime)."""
    header = request.headers.get("authorization")
    if not header:
        raise NotAuthenticated("Authentication credentials were not provided.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Use 'Authorization: Bearer YOUR_API_TOKEN'.")
    credential = await find_credential(session, token.strip())
    if credential is None:
        raise NotAuthenticated("Invalid, expired or revoked API token.")
    request.app.state.runtime.note_token_use(credential.token)
    logs.note_account(credential.account.id)
    return credential


CurrentCredential = Annotated[Credential, Depends(_current_credential)]
"""The account and the token it called with; a read token is refused on any change."""
CurrentAccount = Annotated[Account, Depends(_current_account)]
BrieflyAuthenticatedAccount = Annotated[Account, Depends(_current_account_briefly)]
"""Like CurrentAccount, but holds no database connection for the rest of the request."""
