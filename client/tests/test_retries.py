"""The retry policy against real failures: dropped connections (a TCP proxy), gateway
errors and 503s (canned answers from the proxy), and a real rate limit (429)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from support import CountingTransport, FlakyProxy, free_port

from vpsorg_client import (
    CapacityUnavailable,
    Client,
    ConnectionFailed,
    RateLimited,
    RetryPolicy,
    ServerError,
)
from vpsorg_client._http import retry_after

FAST = RetryPolicy(backoff=0.01)


def canned(status: int, code: str, *headers: str) -> bytes:
    body = json.dumps({"detail": f"canned {status}", "code": code, "errors": {}}).encode()
    lines = [
        f"HTTP/1.1 {status} Whatever",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "X-Request-ID: canned-request",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def proxies(api_url: str) -> Iterator[list[FlakyProxy]]:
    made: list[FlakyProxy] = []
    yield made
    for proxy in made:
        proxy.close()


def proxied(proxies: list[FlakyProxy], upstream: str, **spoil: object) -> FlakyProxy:
    proxy = FlakyProxy(upstream, **spoil)  # type: ignore[arg-type]
    proxies.append(proxy)
    return proxy


def test_a_create_whose_answer_is_lost_is_retried_and_creates_one_server(
    client: Client, api_url: str, token: str, proxies: list[FlakyProxy]
) -> None:
    proxy = proxied(proxies, api_url, times=1, drop_response=True)
    with Client(token=token, base_url=proxy.url, retry=FAST) as flaky:
        created = flaky.servers.create(name="retry-1", plan_id=3, os_id=1, location="us-east")

    posts = [r for r in proxy.requests() if r == ("POST", "/api/v1/servers/")]
    keys = proxy.idempotency_keys()
    assert len(posts) == 2, "the first attempt reached the API, then its answer was dropped"
    assert len(keys) == 2 and keys[0] == keys[1], "the retry sent the same Idempotency-Key"
    assert proxy.replays() == 1, "the API replayed the first attempt's answer"
    named = [s for s in client.servers.list() if s.name == "retry-1"]
    assert [s.id for s in named] == [created.server.id]
    created.action.bind(client)
    created.action.wait(timeout=30)
    client.servers.delete(created.server.id)


def test_a_read_whose_connection_drops_is_retried(
    api_url: str, token: str, proxies: list[FlakyProxy]
) -> None:
    proxy = proxied(proxies, api_url, times=2, drop_response=True)
    with Client(token=token, base_url=proxy.url, retry=FAST) as flaky:
        assert flaky.account.get().id
    assert proxy.requests() == [("GET", "/api/v1/account/")] * 3


def test_no_answer_at_all_ends_in_connection_failed() -> None:
    policy = RetryPolicy(max_retries=2, backoff=0.01)
    dead = Client(token="t", base_url=f"http://127.0.0.1:{free_port()}", retry=policy)
    with dead, pytest.raises(ConnectionFailed) as failure:
        dead.account.get()
    assert failure.value.code == "connection_failed"


@pytest.mark.parametrize(
    "answer",
    [
        canned(502, "bad_gateway"),
        canned(504, "gateway_timeout"),
        canned(503, "capacity_unavailable", "Retry-After: 0"),
        canned(429, "rate_limited", "Retry-After: 0"),
        canned(409, "idempotency_key_in_use"),
    ],
    ids=["502", "504", "503-with-retry-after", "429-with-retry-after", "409-key-in-use"],
)
def test_retried_answers(
    api_url: str, token: str, proxies: list[FlakyProxy], answer: bytes
) -> None:
    proxy = proxied(proxies, api_url, times=1, reply=answer)
    with Client(token=token, base_url=proxy.url, retry=FAST) as flaky:
        key = flaky.ssh_keys.list()
    assert isinstance(key, list)
    assert len(proxy.requests()) == 2


def test_503_without_retry_after_is_not_retried(
    api_url: str, token: str, proxies: list[FlakyProxy]
) -> None:
    proxy = proxied(proxies, api_url, times=1, reply=canned(503, "capacity_unavailable"))
    flaky = Client(token=token, base_url=proxy.url, retry=FAST)
    with flaky, pytest.raises(CapacityUnavailable) as refused:
        flaky.servers.create(name="full-1", plan_id=3, os_id=1, location="us-east")
    assert len(proxy.requests()) == 1
    assert isinstance(refused.value, ServerError)
    assert (refused.value.status, refused.value.request_id) == (503, "canned-request")


def test_429_from_a_real_rate_limit_is_retried_after_retry_after(
    limited_url: str, token: str
) -> None:
    limited = limited_url
    transport = CountingTransport()
    started = time.monotonic()
    with Client(token=token, base_url=limited, transport=transport) as client:
        for _ in range(5):
            client.plans.list()
    elapsed = time.monotonic() - started
    statuses = [call[3] for call in transport.calls]
    assert 429 in statuses and statuses.count(200) == 5
    assert elapsed >= 0.9, "the retry waited for Retry-After (at least 1 s)"

    impatient = Client(token=token, base_url=limited, retry=RetryPolicy(max_retries=0))
    with impatient, pytest.raises(RateLimited) as refused:
        for _ in range(5):
            impatient.plans.list()
    assert refused.value.retry_after is not None and refused.value.retry_after >= 1
    assert refused.value.request_id


def test_retry_after_reads_seconds_and_dates() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after(answer("3")) == 3.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = retry_after(answer(later))
    assert seconds is not None and 25 <= seconds <= 31
    assert retry_after(answer("soon")) is None
    assert retry_after(httpx.Response(503)) is None
