"""The audit middleware: pure ASGI, it records each API write request once its response is final.

Placed inside ``RequestGuard`` (the request id is set, and a 500 it renders for an escaped
exception is seen here as that exception) and outside ``Idempotency`` (a replay is seen with
its ``Idempotent-Replayed`` header; a first request's response only after its commit). It is
inside ``RateLimit``: a 429 is not recorded, because the limiter's promise is that a refused
request costs no database query, and a flood of them must not become a flood of inserts into
a table that is kept for good.

The event is written before the last part of the response is passed on, so a client that has
its response also finds the event; that costs a write one short insert. Reads pass straight
through: no buffering, no query.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpsorg.audit import service
from vpsorg.client_address import IPNetwork, client_address

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime

REPLAYED_HEADER = b"idempotent-replayed"
MAX_BODY = 64 * 1024
"""Responses to writes are small; past this the body is not read for an id or an action."""


class AuditTrail:
    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not service.is_audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        status = 500
        replayed = False
        json_body = False
        chunks: list[bytes] = []
        size = 0
        recorded = False

        async def record() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            body = _parse(b"".join(chunks)) if json_body and size <= MAX_BODY else None
            runtime: Runtime = scope["app"].state.runtime
            await service.record_api_write(
                runtime.sessions, self._write(scope, status, replayed, body)
            )

        async def send_recorded(message: Message) -> None:
            nonlocal status, replayed, json_body, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = dict(message.get("headers", []))
                replayed = headers.get(REPLAYED_HEADER, b"").lower() == b"true"
                json_body = b"json" in headers.get(b"content-type", b"")
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if json_body and size <= MAX_BODY:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    await record()
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except Exception:
            status = 500  # RequestGuard logs it and answers 500 with the request id
            await record()
            raise

    def _write(self, scope: Scope, status: int, replayed: bool, body: Any) -> service.ApiWrite:
        return service.ApiWrite(
            request_id=scope.get("state", {}).get("request_id", ""),
            client_address=client_address(scope, self.trusted_proxies),
            method=scope["method"],
            path=scope["path"],
            token=_bearer_token(scope),
            status=status,
            replayed=replayed,
            body=body,
        )


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
