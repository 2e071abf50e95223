"""Request dependencies: the database session, the current account, owned resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vpsorg import logs
from vpsorg.accounts.models import Account
from vpsorg.auth.models import ApiToken, TokenScope
from vpsorg.auth.tokens import (
    Caller,
    Credential,
    due_for_last_used,
    find_caller,
    find_credential,
    token_hash_of,
)
from vpsorg.clock import utcnow
from vpsorg.db import single_statement_reads
from vpsorg.errors import InsufficientScope, NotAuthenticated

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime
    from vpsorg.transactions import WriteTransaction

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Requests that only read. Their transactions are read-only: on SQLite they don't queue
for the write lock that every other request's transaction takes at its start."""


def _sessions_for(request: Request) -> async_sessionmaker[AsyncSession]:
    runtime: Runtime = request.app.state.runtime
    return runtime.read_sessions if request.method in READ_METHODS else runtime.sessions


REQUEST_TRANSACTION = "vpsorg.request_transaction"
"""ASGI scope key of the transaction opened around a whole API write by an outer layer
(``transactions.RequestTransaction``): it commits it after the response is rendered, with
the write's audit event (and its stored response, for an ``Idempotency-Key``) in it.
"""


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent.

    An API write's is the one ``transactions.RequestTransaction`` opened, and commits. Others
    (reads, the web panel's forms) get one here: read-only for GET and HEAD (see
    ``READ_METHODS``); every other method may write.
    """
    held: WriteTransaction | None = request.scope.get(REQUEST_TRANSACTION)
    if held is not None:
        yield held.session  # the layer that opened it commits or rolls it back
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
        raise InsufficientScope(READ_ONLY_TOKEN)
    return credential


READ_ONLY_TOKEN = "This token may only read (scope 'read'); changes need a token with scope 'write'."


async def _current_account(
    credential: Annotated[Credential, Depends(_current_credential)],
) -> Account:
    return credential.account


async def _current_account_briefly(request: Request) -> Account:
    """Authenticate in a short read-only transaction of its own (for long-polling routes)."""
    async with request.app.state.runtime.read_sessions() as session:
        return (await authenticate(request, session)).account


UNKNOWN_TOKEN = "Invalid, expired or revoked API token."


def bearer_token(request: Request) -> str:
    """The token of the ``Authorization: Bearer`` header, or 401 when there is none."""
    header = request.headers.get("authorization")
    if not header:
        raise NotAuthenticated("Authentication credentials were not provided.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Use 'Authorization: Bearer YOUR_API_TOKEN'.")
    return token.strip()


def bearer_token_hash(request: Request) -> str:
    """The stored hash of the Bearer token, or 401 for a token that cannot be one of ours."""
    token_hash = token_hash_of(bearer_token(request))
    if token_hash is None:
        raise NotAuthenticated(UNKNOWN_TOKEN)
    return token_hash


async def authenticate(request: Request, session: AsyncSession) -> Credential:
    """The Bearer token's account and token, or 401; notes the token's use (see runtime)."""
    credential = await find_credential(session, bearer_token(request))
    if credential is None:
        raise NotAuthenticated(UNKNOWN_TOKEN)
    request.app.state.runtime.note_token_use(credential.token)
    logs.note_account(credential.account.id)
    return credential


def note_caller(request: Request, caller: Caller | None) -> Caller:
    """A caller found by a statement of its own or joined into the request's first one (a
    read's, a create's), or 401; 403 for a read token on anything but a read.

    Notes the token's use as ``authenticate`` does.
    """
    if caller is None:
        raise NotAuthenticated(UNKNOWN_TOKEN)
    if request.method not in READ_METHODS and caller.scope != TokenScope.WRITE:
        raise InsufficientScope(READ_ONLY_TOKEN)
    if due_for_last_used(caller, utcnow()):
        token = ApiToken(id=caller.token_id, last_used_at=caller.last_used_at)
        request.app.state.runtime.note_token_use(token)
    logs.note_account(caller.account_id)
    return caller


async def _reading_caller(request: Request) -> Caller:
    """The caller of a read, in one statement outside any transaction (no ORM session)."""
    token_hash = bearer_token_hash(request)
    runtime: Runtime = request.app.state.runtime
    caller = await single_statement_reads(
        runtime.read_engine, lambda connection: find_caller(connection, token_hash)
    )
    return note_caller(request, caller)


CurrentCredential = Annotated[Credential, Depends(_current_credential)]
"""The account and the token it called with; a read token is refused on any change."""
CurrentAccount = Annotated[Account, Depends(_current_account)]
BrieflyAuthenticatedAccount = Annotated[Account, Depends(_current_account_briefly)]
"""Like CurrentAccount, but holds no database connection for the rest of the request."""
ReadingCaller = Annotated[Caller, Depends(_reading_caller)]
"""The caller of a GET that reads with statements of its own (see ``single_statement_reads``):
authenticated as CurrentAccount is, in one statement, with no session or transaction."""
