"""The hook: pure ASGI middleware that gives API writes with an ``Idempotency-Key`` their
retry semantics: a replay of the stored response, or a refusal, before the app runs.

The key is looked up in a short read-only transaction, and reserved in a short one of its
own, committed before the request runs, so that a concurrent repeat sees it at once. The
key's first request then runs in the write's one transaction (``transactions``, just
outside this layer), which stores its response with its effect: a crash between two
commits would let a retry bill a second server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vpsorg.deps import REQUEST_TRANSACTION, authenticate
from vpsorg.errors import ApiError, NotAuthenticated, error_response
from vpsorg.idempotency import service
from vpsorg.idempotency.service import StoredResponse
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
            async with runtime.read_sessions() as session:
                account_id = await _account_id(session, scope)
                if account_id is not None:
                    service.check_key(key)
                    print_ = service.fingerprint(scope["method"], scope["path"], body)
                    stored = await service.look(session, account_id, key, print_)
            if account_id is None:  # the route answers 401 as usual
                await self.app(scope, receive, send)
                return
            claim = stored or await service.reserve(
                runtime.sessions,
                account_id,
                key,
                print_,
                runtime.settings.idempotency_lock_seconds,
            )
        except ApiError as error:
            await error_response(error)(scope, receive, send)
            return
        if isinstance(claim, StoredResponse):
            await _replay_response(claim)(scope, receive, send)
            return
        transaction.reservation = claim  # its response is stored with its effect
        await self.app(scope, receive, send)


def _key_header(scope: Scope) -> str | None:
    if scope["type"] != "http" or scope["method"] not in service.METHODS:
        return None
    for name, value in scope["headers"]:
        if name == HEADER:
            return str(value.decode("latin-1"))
    return None


async def _account_id(session: AsyncSession, scope: Scope) -> int | None:
    """The caller's account, None if not signed in; read in the short read-only transaction
    that then looks the key up."""
    try:
        return (await authenticate(Request(scope), session)).account.id
    except NotAuthenticated:
        return None


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
