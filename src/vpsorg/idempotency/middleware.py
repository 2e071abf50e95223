"""The hook: pure ASGI middleware that gives API writes with an ``Idempotency-Key`` their
retry semantics: a replay of the stored response, or a refusal, before the app runs.

The key is reserved in a short transaction of its own, committed before the request runs,
so that a concurrent repeat sees it at once (see ``_claim`` for how it is looked up). The
key's first request then runs in the write's one transaction (``transactions``, just
outside this layer), which stores its response with its effect: a crash between two
commits would let a retry bill a second server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vpsorg.auth.tokens import Caller, find_caller
from vpsorg.db import single_statement_reads
from vpsorg.deps import REQUEST_TRANSACTION, bearer_token_hash
from vpsorg.errors import ApiError, NotAuthenticated, error_response
from vpsorg.idempotency import repository, service
from vpsorg.idempotency.models import IdempotencyKey
from vpsorg.idempotency.service import Reservation, StoredResponse
from vpsorg.middleware import replay_body

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime
    from vpsorg.transactions import WriteTransaction

HEADER = service.HEADER.lower().encode()


class Idempotency:
    """Requests without the header pass straight through: no query, no buffering; so do
    those outside the API (the web panel's forms), which have no write transaction."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_header(scope)
        transaction: WriteTransaction | None = scope.get(REQUEST_TRANSACTION)
        if key is None or transaction is None:
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        body = await _read_body(receive)
        receive = replay_body(body, receive)
        try:
            token_hash = bearer_token_hash(Request(scope))
        except NotAuthenticated:
            token_hash = None
        try:
            claim = (
                None if token_hash is None else await _claim(runtime, scope, key, body, token_hash)
            )
        except ApiError as error:
            await error_response(error)(scope, receive, send)
            return
        if isinstance(claim, StoredResponse):
            await _replay_response(claim)(scope, receive, send)
            return
        transaction.reservation = claim  # its response is stored with its effect
        await self.app(scope, receive, send)  # without a claim, the route answers 401


async def _claim(
    runtime: Runtime, scope: Scope, key: str, body: bytes, token_hash: str
) -> Reservation | StoredResponse | None:
    """The key's reservation for this request, or its stored response; None when the token
    is not live. Raises ApiError for a bad key, or one in use or used for another request.

    On PostgreSQL a new key, as most are, takes one statement (``reserve_as_caller``);
    otherwise the caller and its row for the key are read, and the row decides. Not so on
    SQLite: there every write waits for the one writer, which a first request still running
    holds until it answers, and its repeat must hear at once that the key is in use.
    """
    print_ = service.fingerprint(scope["method"], scope["path"], body)
    lock_seconds = runtime.settings.idempotency_lock_seconds
    if service.is_key(key) and runtime.engine.dialect.name != "sqlite":
        new = await service.reserve_as_caller(
            runtime.sessions, token_hash, key, print_, lock_seconds
        )
        if new is not None:
            return new
    found = await _caller_and_key(runtime, token_hash, key)
    if found is None:
        return None
    caller, seen = found
    service.check_key(key)
    stored = service.look(seen, print_)
    return stored or await service.reserve(
        runtime.sessions, caller.account_id, key, print_, lock_seconds, seen
    )


def _key_header(scope: Scope) -> str | None:
    if scope["type"] != "http" or scope["method"] not in service.METHODS:
        return None
    for name, value in scope["headers"]:
        if name == HEADER:
            return str(value.decode("latin-1"))
    return None


async def _caller_and_key(
    runtime: Runtime, token_hash: str, key: str
) -> tuple[Caller, IdempotencyKey | None] | None:
    """The caller and its account's row for the key, in one statement outside any
    transaction: on SQLite it doesn't queue behind a first request holding the write lock.
    A key that is no key (``check_key`` refuses it after authentication) is not looked up."""
    if not service.is_key(key):
        caller = await single_statement_reads(
            runtime.read_engine, lambda connection: find_caller(connection, token_hash)
        )
        return None if caller is None else (caller, None)
    return await single_statement_reads(
        runtime.read_engine,
        lambda connection: repository.find_with_caller(connection, token_hash, key),
    )


def _replay_response(stored: StoredResponse) -> Response:
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.content_type,
        headers={service.REPLAYED_HEADER: "true"},
    )


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
