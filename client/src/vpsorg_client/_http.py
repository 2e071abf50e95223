"""The transport: one request in, parsed JSON (or an exception) out, with the retry policy.

Which failures are retried, and why:

* no answer (refused, reset, dropped): every request. GET/PUT/DELETE are idempotent, and
  POST/PATCH always carry an ``Idempotency-Key`` generated here and kept across the
  retries, so the API runs the first attempt's effect once and replays its answer.
* 502 and 504: the same (a proxy or gateway in front of the API failed).
* 409 ``idempotency_key_in_use``: the first attempt, whose answer we lost, is still
  running; its answer is stored when it ends, so asking again soon gets it.
* 429 and 503 only when the answer has ``Retry-After``, after that many seconds: without
  it (a ``503 capacity_unavailable``), retrying would only repeat the refusal.

The sync and async transports share every decision; they differ only in how they send
and sleep.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from vpsorg_client import __version__
from vpsorg_client.errors import ConnectionFailed, VpsError, error_class

log = logging.getLogger("vpsorg_client")

API_PREFIX = "/api/v1"
IDEMPOTENCY_KEY = "Idempotency-Key"
KEYED_METHODS = frozenset({"POST", "PATCH"})
RETRIED_STATUSES = frozenset({502, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})
DEFAULT_TIMEOUT = 30.0
# Transport errors that another attempt cannot mend (a URL such as "api.example.com").
NOT_RETRIED = (httpx.UnsupportedProtocol,)


@dataclass(frozen=True)
class Request:
    """One API call. ``path`` is under ``/api/v1``; ``timeout`` overrides the read timeout
    (a long-poll needs more than its ``wait``)."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    timeout: float | None = None
    idempotency_key: str | None = None

    def with_key(self) -> Request:
        """POST and PATCH get a key of their own, generated once, kept by every retry."""
        if self.method not in KEYED_METHODS or self.idempotency_key:
            return self
        return Request(
            self.method, self.path, self.params, self.json, self.timeout, str(uuid.uuid4())
        )


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    backoff: float = 0.25  # seconds before the first retry; doubled each time, with jitter
    max_backoff: float = 8.0
    max_retry_after: float = 120.0  # a longer Retry-After is raised, not slept through

    def backoff_delay(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff * 2.0**attempt)
        return base / 2 + random.uniform(0, base / 2)

    def after_failure(self, attempt: int) -> float | None:
        """Seconds to wait before retrying a request that got no answer, or None."""
        return self.backoff_delay(attempt) if attempt < self.max_retries else None

    def after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying this answer, or None to return or raise it."""
        if attempt >= self.max_retries:
            return None
        status = response.status_code
        if status in RETRIED_STATUSES:
            return self.backoff_delay(attempt)
        if status == 409 and _code(response) == "idempotency_key_in_use":
            return self.backoff_delay(attempt)
        if status in RETRY_AFTER_STATUSES:
            seconds = retry_after(response)
            if seconds is not None and seconds <= self.max_retry_after:
                return seconds
        return None


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (it may be a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def api_error(response: httpx.Response) -> VpsError:
    """The exception for an error answer, with everything the API said."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": response.text.strip()[:200] or response.reason_phrase}
    code = body.get("code") if isinstance(body.get("code"), str) else None
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else None
    cls = error_class(response.status_code, code)
    return cls(
        str(body.get("detail") or response.reason_phrase),
        status=response.status_code,
        code=code,
        errors=errors,
        request_id=response.headers.get("X-Request-ID"),
        retry_after=retry_after(response),
    )


def result(response: httpx.Response) -> Any:
    if response.is_success:
        return None if response.status_code == 204 or not response.content else response.json()
    raise api_error(response)


def normalize_base_url(base_url: str) -> str:
    """``https://api.example.com``, with or without a trailing ``/`` or ``/api/v1``."""
    url = base_url.rstrip("/")
    return url.removesuffix(API_PREFIX)


@dataclass
class Settings:
    token: str
    base_url: str
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    user_agent: str = f"vpsorg-client/{__version__}"

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }

    def build(self, client: httpx.Client | httpx.AsyncClient, request: Request) -> httpx.Request:
        headers = {IDEMPOTENCY_KEY: request.idempotency_key} if request.idempotency_key else {}
        extensions = {}
        if request.timeout is not None:
            extensions["timeout"] = httpx.Timeout(self.timeout, read=request.timeout).as_dict()
        return client.build_request(
            request.method,
            API_PREFIX + request.path,
            params=request.params,
            json=request.json,
            headers=headers,
            extensions=extensions,
        )


def _log_retry(request: Request, attempt: int, delay: float, why: str) -> None:
    log.info(
        "retrying %s %s in %.2fs (attempt %d): %s",
        request.method,
        request.path,
        delay,
        attempt + 2,
        why,
    )


def _give_up(request: Request, error: httpx.TransportError) -> ConnectionFailed:
    return ConnectionFailed(f"No answer to {request.method} {request.path}: {error!r}")


class SyncTransport:
    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.http = httpx.Client(
            base_url=settings.base_url,
            headers=settings.headers(),
            timeout=settings.timeout,
            transport=transport,
        )

    def send(self, request: Request) -> Any:
        request = request.with_key()
        policy = self.settings.retry
        attempt = 0
        while True:
            try:
                response = self.http.send(self.settings.build(self.http, request))
            except NOT_RETRIED as error:
                raise _give_up(request, error) from error
            except httpx.TransportError as error:
                delay = policy.after_failure(attempt)
                if delay is None:
                    raise _give_up(request, error) from error
                _log_retry(request, attempt, delay, repr(error))
            else:
                delay = policy.after_response(attempt, response)
                if delay is None:
                    return result(response)
                _log_retry(request, attempt, delay, f"HTTP {response.status_code}")
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        self.http.close()


class AsyncTransport:
    def __init__(
        self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=settings.headers(),
            timeout=settings.timeout,
            transport=transport,
        )

    async def send(self, request: Request) -> Any:
        request = request.with_key()
        policy = self.settings.retry
        attempt = 0
        while True:
            try:
                response = await self.http.send(self.settings.build(self.http, request))
            except NOT_RETRIED as error:
                raise _give_up(request, error) from error
            except httpx.TransportError as error:
                delay = policy.after_failure(attempt)
                if delay is None:
                    raise _give_up(request, error) from error
                _log_retry(request, attempt, delay, repr(error))
            else:
                delay = policy.after_response(attempt, response)
                if delay is None:
                    return result(response)
                _log_retry(request, attempt, delay, f"HTTP {response.status_code}")
            await asyncio.sleep(delay)
            attempt += 1

    async def close(self) -> None:
        await self.http.aclose()
