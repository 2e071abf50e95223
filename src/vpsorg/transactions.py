"""One transaction per API write: its effect, its ``Idempotency-Key`` response and its audit
event are committed together, once the response is final and before it is sent.

Why one: the audit event had a transaction of its own after the effect's, and those BEGIN,
INSERT and COMMIT round trips (and a session) were 1.5-2 ms of the ~11 ms of CPU a create
costs the API process on PostgreSQL. Why a pure ASGI middleware: the event and the stored
response need the final response (status, body, ``Idempotent-Replayed``), and a FastAPI
dependency finishes before the response exists.

``RequestTransaction`` sits inside ``RateLimit`` (a refused request costs no query and
writes no event: a flood of 429s must not become a flood of inserts into a table kept for
good) and outside ``Idempotency`` (whose replays and early refusals it records too). For
every API request that may write (``audit.service.is_audited``) it opens a session that
begins at its first statement: a route that opens a write transaction of its own before it
touches ``DbSession`` does not wait for this one (SQLite: one write connection). The app's
response is held until the commit:

- 2xx keeps the effect; any other status rolls it back: an error writes nothing but its
  records;
- the key's first response is stored, or the key freed (``idempotency.service``);
- the audit event is inserted last (``audit.service.add_api_write`` says what happens when
  it fails); one COMMIT; the worker is woken for the actions queued; the response is sent.

An exception escaping the app rolls everything back; the key is freed and the 500 that
``RequestGuard`` then answers is recorded, each in a short transaction of its own.
Reads and the web panel's pages pass straight through: no buffering, no query.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpsorg.audit import service as audit
from vpsorg.client_address import IPNetwork
from vpsorg.deps import REQUEST_TRANSACTION, after_commit
from vpsorg.errors import ApiError, error_response
from vpsorg.idempotency import service as idempotency

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime


@dataclass
class WriteTransaction:
    """The transaction of one API write, in ``scope[REQUEST_TRANSACTION]`` while the app runs.

    ``DbSession`` yields its session. ``Idempotency`` sets ``reservation`` when the request
    is its key's first: the response is then stored in this transaction too.
    """

    session: AsyncSession
    reservation: idempotency.Reservation | None = None


@dataclass
class HeldResponse:
    """A response's ASGI messages, held until the transaction that made it has committed."""

    messages: list[Message] = field(default_factory=list)

    async def hold(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        if not self.messages:
            raise RuntimeError("the app returned without a response")
        return int(self.messages[0]["status"])

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0].get("headers", []))

    @property
    def body(self) -> bytes:
        return b"".join(message.get("body", b"") for message in self.messages[1:])


class RequestTransaction:
    """Pure ASGI middleware: the one owner of each API write's transaction (see above)."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not audit.is_audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        response = HeldResponse()
        try:
            async with runtime.sessions() as session:  # closing it rolls back what is left
                transaction = WriteTransaction(session)
                scope[REQUEST_TRANSACTION] = transaction
                try:
                    await self.app(scope, receive, response.hold)
                    response = await self._commit(transaction, response, scope, receive)
                except BaseException:
                    await _free_key(transaction)
                    raise
                finally:
                    scope.pop(REQUEST_TRANSACTION, None)
        except Exception:  # RequestGuard logs it and answers 500 with the request id
            write = audit.ApiWrite.of(scope, self.trusted_proxies, 500)
            await audit.record_api_write(runtime.sessions, write)
            raise
        if response.succeeded:
            after_commit(runtime, session)
        for message in response.messages:
            await send(message)

    async def _commit(
        self, transaction: WriteTransaction, response: HeldResponse, scope: Scope, receive: Receive
    ) -> HeldResponse:
        """Keep or undo the effect, add the records, commit; the response to send."""
        session = transaction.session
        status, headers, body = response.status, response.headers, response.body
        if not 200 <= status < 300:
            await session.rollback()  # no statement when the request wrote nothing
        if transaction.reservation is not None:
            content_type = headers.get(b"content-type", b"").decode("latin-1") or None
            try:
                await idempotency.store_response(
                    session, transaction.reservation, status, content_type, body
                )
            except ApiError as error:  # the key was taken over: this request did nothing
                await session.rollback()
                response = HeldResponse()
                await error_response(error)(scope, receive, response.hold)
                status, headers, body = response.status, response.headers, response.body
        write = audit.ApiWrite.of(scope, self.trusted_proxies, status, headers, body)
        await audit.add_api_write(session, write)
        await session.commit()
        return response


async def _free_key(transaction: WriteTransaction) -> None:
    """Roll back a request that failed, and free its key in a short transaction."""
    if transaction.reservation is None:
        return
    with contextlib.suppress(Exception):
        await transaction.session.rollback()
        await idempotency.release(transaction.session, transaction.reservation)
        await transaction.session.commit()
