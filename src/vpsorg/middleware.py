"""Pure ASGI middleware: request ids, allowed hosts, screened bodies, 500s, HEAD."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpsorg import logs
from vpsorg.errors import ApiError, InvalidHost, InvalidJson, PayloadTooLarge, UnsupportedMediaType

log = logging.getLogger(__name__)

REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_ONLY_PREFIX = "/api/"
"""The API takes JSON bodies only; the web panel's pages (vpsorg.panel) post HTML forms."""
FORM_TYPE = "application/x-www-form-urlencoded"
SAFETY_HEADERS = [(b"x-content-type-options", b"nosniff")]
INTERNAL_ERROR = {"detail": "Internal server error.", "code": "internal_error", "errors": {}}


class RequestGuard:
    """What every request goes through before the app, and every response after it.

    - Every response carries an ``X-Request-ID`` (a sane incoming one is echoed), 500s too:
      an exception that escapes the app is logged with the id and answered here; and
      ``X-Content-Type-Options: nosniff``, and ``Cache-Control: no-store`` when the request
      carried credentials.
    - Without a public URL configured, a ``Host`` not in ``allowed_hosts`` is a 400, as
      absolute links (``next``/``previous``) are built from it.
    - Bodies of POST/PUT/PATCH are read here in full (they are small): over
      ``max_body_bytes`` is a 413 whether or not it announced its length; a non-JSON
      content type is a 415; a body that does not parse as JSON (not UTF-8, nested too
      deeply, a number of thousands of digits) is ``400 invalid_json``; a body sent
      without a content type is read as JSON.
    """

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, allowed_hosts: Sequence[str] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = [host.lower() for host in allowed_hosts] if allowed_hosts else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if REQUEST_ID_PATTERN.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        logs.note_request_id(request_id)
        extra_headers = [(b"x-request-id", request_id.encode()), *SAFETY_HEADERS]
        if "authorization" in headers:  # an account's data: no cache may keep a copy
            extra_headers.append((b"cache-control", b"no-store"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        try:
            self._check_host(headers.get("host"))
            if scope["method"] in BODY_METHODS:
                form_allowed = not scope["path"].startswith(JSON_ONLY_PREFIX)
                body = await self._read_body(headers, receive, form_allowed)
                if body.strip() and "content-type" not in headers:
                    scope["headers"] = [*scope["headers"], (b"content-type", b"application/json")]
                receive = replay_body(body, receive)
        except ApiError as error:
            await _send_json(error.status_code, error.body(), send_with_id)
            return
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "request %s: unhandled error on %s %s", request_id, scope["method"], scope["path"]
            )
            if not started:
                await _send_json(500, INTERNAL_ERROR, send_with_id)

    def _check_host(self, host: str | None) -> None:
        if self.allowed_hosts is None or host is None:
            return
        name = _host_name(host)
        if not any(_host_matches(name, allowed) for allowed in self.allowed_hosts):
            raise InvalidHost(
                f"Invalid Host header {host[:100]!r}: this server does not answer to that name."
            )

    async def _read_body(
        self, headers: dict[str, str], receive: Receive, form_allowed: bool
    ) -> bytes:
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
        if form_allowed and content_type == FORM_TYPE:
            return body
        if (
            body.strip()
            and content_type
            and not (content_type == "application/json" or content_type.endswith("+json"))
        ):
            raise UnsupportedMediaType(
                f"Content-Type '{content_type}' is not supported; send 'application/json'."
            )
        if body.strip():
            _check_json(body)
        return body


def _check_json(body: bytes) -> None:
    """Refuse what FastAPI's parser would choke on, with the reason, as ``invalid_json``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJson.because(f"The body is not UTF-8 (byte {exc.start}).") from None
    try:
        json.loads(text)
    except RecursionError:
        raise InvalidJson.because("The body is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, and integers over Python's 4,300 digits
        raise InvalidJson.because(str(exc)) from None


def _host_name(host: str) -> str:
    """The name in a Host header, without the port: ``[::1]:8000`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _host_matches(name: str, allowed: str) -> bool:
    """``*`` matches any name; ``.example.com`` matches it and its subdomains (Django's rule)."""
    if allowed == "*":
        return True
    if allowed.startswith("."):
        return name == allowed[1:] or name.endswith(allowed)
    return name == allowed


class HeadAsGet:
    """HEAD is GET without the body (RFC 9110): same status and headers, no content."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app a body already read, then the connection's events."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_json(status: int, body: dict[str, Any], send: Send) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
