"""Counting requests against limits, in memory or in Redis, with the `limits` library.

The strategy is the moving window: a limit of N per minute admits at most N requests in
any 60 seconds, and a refused request is not recorded, so a client that keeps retrying is
let in again as soon as its oldest request ages out (README, "Rate limits", says why).

If the storage fails (Redis down or slow), requests are let through: the limits are a
guard against abuse, and an outage of the guard must not become an outage of the API.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from vpsorg.config import Settings

log = logging.getLogger(__name__)

REDIS_TIMEOUT = 0.5
"""Seconds a request waits for Redis before it is let through unlimited."""
RETRY_INTERVAL = 5.0
"""After a storage failure, requests skip the limits this long before Redis is tried again,
so an unreachable Redis costs one timeout per interval, not one per request."""
WARNING_INTERVAL = 60.0
"""While the storage keeps failing, the warning is logged at most this often."""


@dataclass(frozen=True)
class Quota:
    """Where one limit stands for one key: what the RateLimit-* headers say."""

    item: RateLimitItem
    kind: str  # "address" or "token"
    remaining: int
    reset_at: float  # epoch seconds when a spent request is given back

    def reset_after(self, now: float) -> int:
        """Whole seconds until ``reset_at``, rounded up so a client that waits that long is in."""
        return max(0, math.ceil(self.reset_at - now))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    quota: Quota
    """The limit that refused the request, or else the tightest one that applies."""


@dataclass(frozen=True)
class _Key:
    item: RateLimitItem
    kind: str
    identity: str


class Limiter:
    """Per-address and per-token limits over one storage."""

    def __init__(
        self,
        storage: Storage,
        address_limits: list[RateLimitItem],
        token_limits: list[RateLimitItem],
        *,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)
        self.address_limits = address_limits
        self.token_limits = token_limits
        self._close = close
        self._resting_until = 0.0
        self._next_warning = 0.0
        self._failing = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Limiter | None:
        """The limiter the settings ask for; None when they set no limits at all."""
        address_limits, token_limits = settings.client_rate_limits, settings.token_rate_limits
        if not address_limits and not token_limits:
            return None
        if settings.redis_url is None:
            return cls(MemoryStorage(), address_limits, token_limits)
        import redis.asyncio

        pool = redis.asyncio.ConnectionPool.from_url(
            settings.redis_url,
            socket_connect_timeout=REDIS_TIMEOUT,
            socket_timeout=REDIS_TIMEOUT,
        )
        options: dict[str, Any] = {"connection_pool": pool}
        scheme, _, rest = settings.redis_url.partition("://")
        scheme = "redis+unix" if scheme == "unix" else scheme
        storage = RedisStorage(
            f"async+{scheme}://{rest}",
            implementation="redispy",
            key_prefix=f"{settings.redis_key_prefix}:ratelimit",
            wrap_exceptions=True,
            **options,
        )
        return cls(storage, address_limits, token_limits, close=pool.aclose)

    async def close(self) -> None:
        if isinstance(self.storage, MemoryStorage) and self.storage.timer is not None:
            self.storage.timer.cancel()
        if self._close is not None:
            await self._close()

    async def check(self, address: str, token_digest: str | None) -> Verdict | None:
        """Count one request from ``address`` (and with the token, when it has one).

        The address is counted first, and a request over an address limit is refused
        without touching the token's counts. None when no limit applies, or when the
        storage failed and the request is let through.
        """
        if time.monotonic() < self._resting_until:
            return None
        keys = [_Key(item, "address", address) for item in self.address_limits]
        if token_digest is not None:
            keys += [_Key(item, "token", token_digest) for item in self.token_limits]
        if not keys:
            return None
        try:
            verdict = await self._count(keys)
        except (StorageError, OSError) as exc:
            self._failed(exc)
            return None
        if self._failing:
            self._failing = False
            log.warning("rate limits are enforced again: their storage answers")
        return verdict

    async def _count(self, keys: list[_Key]) -> Verdict:
        # Shortest window first (config sorts them): a request refused by the minute's
        # limit is not recorded against the hour's.
        for key in keys:
            if not await self.strategy.hit(key.item, key.kind, key.identity):
                return Verdict(False, await self._quota(key))
        quotas = await asyncio.gather(*(self._quota(key) for key in keys))
        tightest = min(quotas, key=lambda quota: (quota.remaining, -quota.reset_at))
        return Verdict(True, tightest)

    async def _quota(self, key: _Key) -> Quota:
        stats = await self.strategy.get_window_stats(key.item, key.kind, key.identity)
        return Quota(key.item, key.kind, max(0, stats.remaining), stats.reset_time)

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._resting_until = now + RETRY_INTERVAL
        self._failing = True
        if now >= self._next_warning:
            self._next_warning = now + WARNING_INTERVAL
            log.warning(
                "rate limits are not enforced: their storage failed (%s); requests are let "
                "through, and it is tried again every %g s",
                exc,
                RETRY_INTERVAL,
            )
