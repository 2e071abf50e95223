"""The hook: pure ASGI middleware that gives write requests with an ``Idempotency-Key`` their
retry semantics, and stores each first response in the transaction of its effect.

Why a middleware that owns the request's transaction: the response must be stored in the
same commit as the request's effect (a server row and its first hour's charge), or a crash
between two commits lets a retry bill a second server. FastAPI commits ``DbSession`` when
the route's function-scoped dependencies exit, and a dependency never sees the response.
So for these requests this layer opens the transaction, ``DbSession`` uses it (see
``deps.REQUEST_TRANSACTION``), and the rendered response is held here until the response
row is written and the transaction committed; only then is it sent. Error responses
(rendered by the app's handlers) are stored the same way after the effect is rolled back.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpsorg.deps import REQUEST_TRANSACTION, after_commit, authenticate
from vpsorg.errors import ApiError, IdempotencyKeyInUse, NotAuthenticated, error_response
from vpsorg.idempotency import repository, service
from vpsorg.idempotency.service import Reservation, StoredResponse
from vpsorg.middleware import replay_body

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime

HEADER = service.HEADER.lower().encode()
REPLAYED = "Idempotent-Replayed"
_TAKEN_OVER = (
    "This request outlived its Idempotency-Key lock and a retry took the key over; nothing "
    "was done here. Retry to get that request's answer."
)


class Idempotency:
    """Requests without the header pass straight through: no query, no buffering."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_header(scope)
        if key is None:
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
        await self._run_first(runtime, claim, scope, receive, send)

    async def _run_first(
        self, runtime: Runtime, reservation: Reservation, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the key's first request in a transaction that also stores its response."""
        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        async with runtime.sessions() as session:
            scope[REQUEST_TRANSACTION] = session
            try:
                await self.app(scope, receive, hold)
                status = int(messages[0]["status"])
                if not service.may_store(status):
                    await _release(session, reservation)
                else:
                    if not 200 <= status < 300:
                        await session.rollback()  # an error writes nothing but its response
                    if not await _record(session, reservation, status, messages):
                        await session.rollback()
                        await error_response(IdempotencyKeyInUse(_TAKEN_OVER))(scope, receive, send)
                        return
                    await session.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    await _release(session, reservation)
                raise
            finally:
                scope.pop(REQUEST_TRANSACTION, None)
            if 200 <= status < 300:
                after_commit(runtime, session)
        for message in messages:
            await send(message)


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


async def _record(
    session: AsyncSession, reservation: Reservation, status: int, messages: list[Message]
) -> bool:
    headers = dict(messages[0].get("headers", []))
    content_type = headers.get(b"content-type")
    return await repository.record(
        session,
        reservation.id,
        reservation.lock_token,
        status=status,
        content_type=content_type.decode("latin-1") if content_type else None,
        body=b"".join(m.get("body", b"") for m in messages[1:]),
    )


async def _release(session: AsyncSession, reservation: Reservation) -> None:
    """Roll back whatever the request did and free its key, in one short transaction."""
    await session.rollback()
    await repository.release(session, reservation.id, reservation.lock_token)
    await session.commit()


def _replay_response(stored: StoredResponse) -> Response:
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.content_type,
        headers={REPLAYED: "true"},
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
