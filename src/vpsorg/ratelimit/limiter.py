"""Counting requests against limits, in memory or in Redis.

The strategy is the sliding window counter (Cloudflare's; `limits`' "sliding-window-counter"):
each key keeps two counts, this fixed window's and the previous one's, and a request is
admitted while ``previous * (share of the previous window still inside the last W seconds) +
current`` is under the limit. It approximates the moving window (at most N requests in any W
seconds) without a timestamp per request: two counters a key, and the same few operations
whatever the limit. A refused request is not counted, so a client that keeps retrying is let in
as soon as ``Retry-After`` says (README, "Rate limits").

In Redis the counts are `limits`' (atomic Lua, shared by every process); in memory they are a
dict of this module's, with the same arithmetic: `limits`' own memory storage cost about 17 us
a key per request (locks, tasks, key strings), the dict about 2.

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
from typing import Any, Protocol

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.errors import StorageError

from vpsorg.config import Settings

log = logging.getLogger(__name__)

_PAST = 0.001
"""A reset time is this much past the moment the count equals the limit, so it is below it."""
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

    @property
    def name(self) -> str:
        """The key's name in Redis."""
        return self.item.key_for(self.kind, self.identity)


@dataclass(frozen=True)
class Window:
    """One key's counts at ``now``: the previous fixed window's, how long until that window
    slides out entirely, and the current one's."""

    previous: int
    previous_ttl: float
    current: int
    now: float

    def weighted(self, expiry: int) -> float:
        return self.previous * self.previous_ttl / expiry + self.current

    def quota(self, key: _Key) -> Quota:
        """What is left of ``key``'s limit, and when a spent request is given back: when the
        weighted count next falls below the limit (refused) or one below where it is now."""
        amount, expiry = key.item.amount, key.item.get_expiry()
        weighted = self.weighted(expiry)
        remaining = max(0, amount - math.floor(weighted))
        target = amount if weighted >= amount else math.floor(weighted)
        return Quota(key.item, key.kind, remaining, self.now + self._seconds_below(target, expiry))

    def _seconds_below(self, target: float, expiry: int) -> float:
        """Seconds until the weighted count is below ``target``, the counts being what they are
        (a millisecond past the moment it equals it, so that at the time given it is below)."""
        if target <= 0 or self.weighted(expiry) < target:
            return 0.0
        into_window = self.now % expiry
        if self.previous and self.current < target:
            # The previous window's share shrinks through this one.
            reached = expiry * (1 - (target - self.current) / self.previous)
            return max(0.0, reached - into_window) + _PAST
        # Only in the next window, as this one's count slides out in turn.
        return (expiry - into_window) + expiry * (1 - target / self.current) + _PAST


class Counts(Protocol):
    """Where the sliding windows' counts live."""

    async def hit(self, key: _Key) -> bool:
        """Count one request against ``key`` unless it is over its limit; whether it counted."""

    async def window(self, key: _Key) -> Window: ...

    async def windows(self, keys: list[_Key]) -> list[Window]: ...

    async def close(self) -> None: ...


class MemoryCounts:
    """The counts in this process's memory: exact for one process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        # (kind, identity, limit, window in seconds, the window's index): its count
        self._counts: dict[tuple[str, str, int, int, int], int] = {}
        self._sweep_at = 0.0

    async def hit(self, key: _Key) -> bool:
        window = self._window(key)
        if math.floor(window.weighted(key.item.get_expiry())) + 1 > key.item.amount:
            return False
        expiry = key.item.get_expiry()
        self._counts[(*_slot(key), expiry, int(window.now // expiry))] = window.current + 1
        return True

    async def window(self, key: _Key) -> Window:
        return self._window(key)

    async def windows(self, keys: list[_Key]) -> list[Window]:
        return [self._window(key) for key in keys]

    async def close(self) -> None:
        self._counts.clear()

    def _window(self, key: _Key) -> Window:
        now = self.clock()
        expiry = key.item.get_expiry()
        index = int(now // expiry)
        if now >= self._sweep_at:
            self._sweep(now)
        slot = _slot(key)
        previous = self._counts.get((*slot, expiry, index - 1), 0)
        current = self._counts.get((*slot, expiry, index), 0)
        return Window(previous, expiry - now % expiry if previous else 0.0, current, now)

    def _sweep(self, now: float) -> None:
        """Forget windows too old to weigh (a minute at most between sweeps)."""
        self._sweep_at = now + 60
        self._counts = {
            key: count for key, count in self._counts.items() if key[4] >= int(now // key[3]) - 1
        }


def _slot(key: _Key) -> tuple[str, str, int]:
    return key.kind, key.identity, key.item.amount


class RedisCounts:
    """The counts in Redis, through `limits`' atomic sliding-window scripts: shared by every
    process that uses the same Redis and key prefix."""

    def __init__(self, storage: RedisStorage, close: Callable[[], Awaitable[None]]) -> None:
        self.storage = storage
        self._close = close

    async def hit(self, key: _Key) -> bool:
        return await self.storage.acquire_sliding_window_entry(
            key.name, key.item.amount, key.item.get_expiry()
        )

    async def window(self, key: _Key) -> Window:
        previous, previous_ttl, current, _ = await self.storage.get_sliding_window(
            key.name, key.item.get_expiry()
        )
        return Window(previous, previous_ttl, current, time.time())

    async def windows(self, keys: list[_Key]) -> list[Window]:
        return await asyncio.gather(*(self.window(key) for key in keys))  # round trips at once

    async def close(self) -> None:
        await self._close()


class Limiter:
    """Per-address and per-token limits over one store of counts."""

    def __init__(
        self,
        counts: Counts,
        address_limits: list[RateLimitItem],
        token_limits: list[RateLimitItem],
    ) -> None:
        self.counts = counts
        self.address_limits = address_limits
        self.token_limits = token_limits
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
            return cls(MemoryCounts(), address_limits, token_limits)
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
        return cls(RedisCounts(storage, pool.aclose), address_limits, token_limits)

    async def close(self) -> None:
        await self.counts.close()

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
            if not await self.counts.hit(key):
                return Verdict(False, (await self.counts.window(key)).quota(key))
        windows = await self.counts.windows(keys)
        quotas = [window.quota(key) for window, key in zip(windows, keys, strict=True)]
        tightest = min(quotas, key=lambda quota: (quota.remaining, -quota.reset_at))
        return Verdict(True, tightest)

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
