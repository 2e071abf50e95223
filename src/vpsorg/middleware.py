"""Pure ASGI middleware: request ids, body size limit, JSON content type."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpsorg.errors import ApiError, PayloadTooLarge, UnsupportedMediaType

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RequestGuard:
    """Gives every response an ``X-Request-ID`` and screens bodies before the app sees them.

    Bodies of POST/PUT/PATCH are read here in full (they are small), so a body over
    ``max_body_bytes`` is a 413 whether or not it announced its length, and a non-empty
    body that is not ``application/json`` is a 415, before any route runs.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        if scope["method"] in BODY_METHODS:
            try:
                body = await self._read_body(headers, receive)
            except ApiError as error:
                await _send_error(error, send_with_id)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send_with_id)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if (
            body.strip()
            and content_type
            and not (content_type == "application/json" or content_type.endswith("+json"))
        ):
            raise UnsupportedMediaType(
                f"Content-Type '{content_type}' is not supported; send 'application/json'."
            )
        return body


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_error(error: ApiError, send: Send) -> None:
    payload: Any = json.dumps(error.body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
