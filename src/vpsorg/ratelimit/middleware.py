"""The rate-limit middleware: pure ASGI, so a refused request costs no database query."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpsorg.client_address import IPNetwork, client_address
from vpsorg.errors import RateLimited, error_response
from vpsorg.ratelimit.limiter import Limiter, Quota

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapers call these often, from few addresses; limiting them would only hurt."""

KIND_NAMES = {"address": "client address", "token": "API token"}


class RateLimit:
    """Counts each request against its client address, then against its Bearer token.

    The address comes from the connection (or ``X-Forwarded-For`` through a trusted proxy);
    the token is never looked up, only hashed, so a flood of made-up tokens is refused by
    the address limit without reaching the database. Counted responses carry
    ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds) for the
    tightest limit; a request over a limit gets ``429 rate_limited`` with ``Retry-After``.
    OPTIONS (CORS preflight) and ``EXEMPT_PATHS`` are not counted.
    """

    def __init__(
        self, app: ASGIApp, limiter: Limiter | None, trusted_proxies: Sequence[IPNetwork]
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.limiter is None
            or scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or scope["path"].rstrip("/") in EXEMPT_PATHS
        ):
            await self.app(scope, receive, send)
            return
        address = client_address(scope, self.trusted_proxies)
        verdict = await self.limiter.check(address, _token_digest(scope))
        if verdict is None:
            await self.app(scope, receive, send)
            return
        now = time.time()
        headers = _headers(verdict.quota, now)
        if not verdict.allowed:
            quota = verdict.quota
            retry_after = max(1, quota.reset_after(now))
            error = RateLimited(
                f"Too many requests: the limit for this {KIND_NAMES[quota.kind]} is "
                f"{quota.item.amount} per {_window(quota)}; retry in {retry_after} s.",
                retry_after,
            )
            response = error_response(error)
            response.headers.update(headers)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                encoded = [
                    (name.lower().encode(), value.encode()) for name, value in headers.items()
                ]
                message["headers"] = [*message.get("headers", []), *encoded]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _token_digest(scope: Scope) -> str | None:
    """A digest of the Bearer token, the key of its limits: raw tokens are never stored."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return None
            # Not the token_hash the database stores: the two stores should not share keys.
            return hashlib.sha256(b"vpsorg rate limit\0" + token.encode()).hexdigest()[:32]
    return None


def _headers(quota: Quota, now: float) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(quota.item.amount),
        "RateLimit-Remaining": str(quota.remaining),
        "RateLimit-Reset": str(quota.reset_after(now)),
    }


def _window(quota: Quota) -> str:
    unit = quota.item.GRANULARITY.name
    count = quota.item.multiples
    return unit if count == 1 else f"{count} {unit}s"
