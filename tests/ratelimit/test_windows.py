"""The sliding window counter in memory, on a clock the test moves (the API tests cover the
limiter through HTTP, in memory and in Redis)."""

from __future__ import annotations

import pytest
from limits import parse

from vpsorg.ratelimit.limiter import Limiter, MemoryCounts


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, limits: str) -> Limiter:
    return Limiter(MemoryCounts(clock), [parse(limit) for limit in limits.split(",")], [])


async def admitted(limiter: Limiter, count: int) -> list[bool]:
    results = []
    for _ in range(count):
        verdict = await limiter.check("192.0.2.1", None)
        assert verdict is not None
        results.append(verdict.allowed)
    return results


async def test_a_full_window_refuses_until_the_next_one_and_says_when() -> None:
    clock = Clock(150.0)  # half way through the minute that began at 120
    five = limiter(clock, "5/minute")

    first = await admitted(five, 6)
    refused = await five.check("192.0.2.1", None)
    assert refused is not None

    assert first == [True] * 5 + [False]
    assert (refused.allowed, refused.quota.remaining) == (False, 0)
    # Nothing from the previous minute weighs: the count falls below 5 once this minute ends.
    assert refused.quota.reset_at == pytest.approx(180.001)
    assert refused.quota.reset_after(clock.now) == 31  # Retry-After, rounded up
    clock.now = refused.quota.reset_at
    assert await admitted(five, 2) == [True, False]


async def test_the_previous_window_slides_out_gradually() -> None:
    clock = Clock(60.0)
    ten = limiter(clock, "10/minute")
    assert await admitted(ten, 10) == [True] * 10

    clock.now = 150.0  # half of the previous minute still weighs: 10 * 0.5 = 5 counted
    second = await admitted(ten, 6)
    refused = await ten.check("192.0.2.1", None)
    assert refused is not None

    assert second == [True] * 5 + [False]
    # 10 * (30 - d) / 60 + 5 < 10 a moment later: one more request about every 6 seconds.
    assert refused.quota.reset_at == pytest.approx(150.001)
    clock.now = refused.quota.reset_at
    assert await admitted(ten, 2) == [True, False]
    clock.now = 156.5  # 10 * 23.5 / 60 + 6 = 9.9
    assert await admitted(ten, 2) == [True, False]


async def test_admitted_requests_report_the_tightest_limit() -> None:
    clock = Clock(3600.0)
    both = limiter(clock, "3/minute,5/hour")

    verdicts = [await both.check("192.0.2.1", None) for _ in range(3)]

    remaining = [(v.quota.item.amount, v.quota.remaining) for v in verdicts if v is not None]
    assert remaining == [(3, 2), (3, 1), (3, 0)]
    clock.now += 120  # the minute's counts are gone; the hour has spent 3 of 5
    assert await admitted(both, 3) == [True, True, False]


async def test_a_refused_request_is_not_counted_against_longer_windows() -> None:
    clock = Clock(7200.0)
    both = limiter(clock, "2/minute,4/hour")

    assert await admitted(both, 10) == [True, True] + [False] * 8
    clock.now += 120
    assert await admitted(both, 3) == [True, True, False]


async def test_windows_too_old_to_weigh_are_forgotten() -> None:
    clock = Clock(0.0)
    counts = MemoryCounts(clock)
    five = Limiter(counts, [parse("5/minute")], [])
    for n in range(100):
        await five.check(f"192.0.2.{n}", None)

    clock.now = 200.0
    await five.check("198.51.100.1", None)

    assert len(counts._counts) == 1

