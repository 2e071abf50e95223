"""Two real ``vpsorg serve`` processes share their counts through Redis.

Each test keys its counts under a Redis prefix of its own. The processes' readiness checks
come from 127.0.0.1 without a token, so these tests count on tokens, or on clients named by
a trusted proxy's X-Forwarded-For, never on 127.0.0.1's own count.
"""

from __future__ import annotations

import itertools

import httpx
import pytest

from tests.e2e.processes import MakeInstallation, VpsorgProcess
from tests.ratelimit.conftest import REDIS_URL

pytestmark = pytest.mark.e2e

PLANS = "/api/v1/plans/"


def serve_twice(
    installations: MakeInstallation, **settings: str
) -> tuple[list[VpsorgProcess], str]:
    installation = installations(redis_url=REDIS_URL, **settings)
    token = installation.create_user().token
    return [installation.serve(), installation.serve()], token


def get(process: VpsorgProcess, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(process.base_url + PLANS, headers=headers, trust_env=False)


def test_two_processes_share_token_and_address_limits(installations, redis_prefix):
    processes, token = serve_twice(
        installations,
        redis_key_prefix=redis_prefix,
        rate_limits="4/minute",
        address_rate_limits="3/minute",
        trusted_proxies="127.0.0.1/32",
    )
    alternating = itertools.islice(itertools.cycle(processes), 6)

    # One token, from a new client address each time (so only the token's limit binds).
    seen = []
    for n, process in enumerate(alternating):
        response = get(
            process, {"Authorization": f"Bearer {token}", "X-Forwarded-For": f"192.0.2.{n}"}
        )
        seen.append((response.status_code, response.headers["ratelimit-remaining"]))
    # Remaining is the tightest: the fresh address (3 a minute) until the token has less.
    assert seen == [(200, "2"), (200, "2"), (200, "1"), (200, "0"), (429, "0"), (429, "0")]

    # One client behind the trusted proxy, no token: the address limit, counted in both.
    first, second = processes
    statuses = [
        get(process, {"X-Forwarded-For": "198.51.100.7"}).status_code
        for process in (first, second, first, second)
    ]
    assert statuses == [401, 401, 401, 429]
    assert get(first, {"X-Forwarded-For": "198.51.100.8"}).status_code == 401, "another client"


def test_without_trusted_proxies_x_forwarded_for_is_ignored(installations, redis_prefix):
    processes, _token = serve_twice(
        installations, redis_key_prefix=redis_prefix, rate_limits="3/minute"
    )
    alternating = zip(range(4), itertools.cycle(processes), strict=False)
    statuses = [
        get(process, {"X-Forwarded-For": f"198.51.100.{n}"}).status_code
        for n, process in alternating
    ]
    # All of them count against 127.0.0.1 (as did the readiness checks): the last is refused.
    assert statuses[-1] == 429, statuses
