"""Rate limits through HTTP: headers, 429, what is keyed on what, and what is not counted."""

from __future__ import annotations

import asyncio
import logging
import secrets

import pytest
from sqlalchemy import event

from tests.e2e.processes import free_port
from tests.ratelimit.conftest import redis_keys

PLANS = "/api/v1/plans/"


def random_token() -> str:
    """Well-formed (so the API would look it up) and belonging to nobody."""
    return "vps_" + secrets.token_urlsafe(32)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def limit_headers(response) -> tuple[int, int, int]:
    headers = response.headers
    return (
        int(headers["ratelimit-limit"]),
        int(headers["ratelimit-remaining"]),
        int(headers["ratelimit-reset"]),
    )


@pytest.mark.limits(rate_limits="5/minute,100/hour")
async def test_responses_describe_the_tightest_limit(client, user):
    for remaining in (4, 3, 2):
        response = await client.get("/api/v1/servers/", headers=user.headers)
        assert response.status_code == 200
        limit, left, reset = limit_headers(response)
        assert (limit, left) == (5, remaining)
        assert 1 <= reset <= 60
        assert "retry-after" not in response.headers


@pytest.mark.limits(rate_limits="5/minute,3/hour")
async def test_the_tightest_limit_is_the_one_with_least_left(client, user):
    response = await client.get("/api/v1/servers/", headers=user.headers)
    limit, left, reset = limit_headers(response)
    assert (limit, left) == (3, 2)
    assert 60 < reset <= 3600


async def test_over_the_limit_is_429_with_retry_after_and_the_error_body(client, user):
    for _ in range(5):
        assert (await client.get("/api/v1/servers/", headers=user.headers)).status_code == 200

    response = await client.get("/api/v1/servers/", headers=user.headers)
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "rate_limited"
    assert body["errors"] == {}
    assert "5 per minute" in body["detail"]
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert limit_headers(response)[:2] == (5, 0)
    assert response.headers["x-request-id"]
    # Still refused: refused requests are not counted, but they do not get in either.
    assert (await client.post("/api/v1/servers/", headers=user.headers)).status_code == 429


@pytest.mark.limits(rate_limits="3/second")
async def test_a_client_that_waits_retry_after_gets_in(client, user):
    for _ in range(3):
        assert (await client.get(PLANS, headers=user.headers)).status_code == 200
    refused = await client.get(PLANS, headers=user.headers)
    assert refused.status_code == 429

    await asyncio.sleep(int(refused.headers["retry-after"]))

    assert (await client.get(PLANS, headers=user.headers)).status_code == 200


async def test_the_address_limit_refuses_random_tokens_without_a_query(app, client):
    runtime = app.state.runtime
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engines = {runtime.engine.sync_engine, runtime.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):  # under the limit: each token is looked up, and is nobody's
            response = await client.get(PLANS, headers=bearer(random_token()))
            assert response.status_code == 401
        assert statements, "the listener must see the token lookups"
        statements.clear()

        for _ in range(20):
            response = await client.get(PLANS, headers=bearer(random_token()))
            assert response.status_code == 429
            assert "client address" in response.json()["detail"]
        assert statements == []
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


@pytest.mark.limits(rate_limits="3/minute", address_rate_limits="100/minute")
async def test_token_limits_separate_two_tokens_from_one_address(client, factory):
    alice, bob = await factory.account(name="alice"), await factory.account(name="bob")
    for remaining in (2, 1, 0):
        response = await client.get(PLANS, headers=alice.headers)
        assert response.status_code == 200
        assert limit_headers(response)[:2] == (3, remaining)
    refused = await client.get(PLANS, headers=alice.headers)
    assert refused.status_code == 429
    assert "API token" in refused.json()["detail"]

    for remaining in (2, 1, 0):
        response = await client.get(PLANS, headers=bob.headers)
        assert response.status_code == 200
        assert limit_headers(response)[:2] == (3, remaining)
    assert (await client.get(PLANS, headers=bob.headers)).status_code == 429


@pytest.mark.limits(rate_limits="2/minute", trusted_proxies="10.0.0.0/8")
async def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy(peer):
    async with peer("10.1.2.3") as proxy:
        # The proxy appends the address it saw; what the client wrote is to its left.
        def via_proxy(seen: str, claimed: str | None = None) -> dict[str, str]:
            return {"X-Forwarded-For": f"{claimed}, {seen}" if claimed else seen}

        for _ in range(2):
            assert (await proxy.get(PLANS, headers=via_proxy("198.51.100.1"))).status_code == 401
        assert (await proxy.get(PLANS, headers=via_proxy("198.51.100.1"))).status_code == 429
        spoofed = via_proxy("198.51.100.1", claimed="203.0.113.99")
        assert (await proxy.get(PLANS, headers=spoofed)).status_code == 429
        # Another client behind the same proxy has limits of its own.
        assert (await proxy.get(PLANS, headers=via_proxy("198.51.100.2"))).status_code == 401
        # A chain of trusted proxies: the right-most hop that is not one of them.
        chain = {"X-Forwarded-For": "198.51.100.1, 10.9.9.9"}
        assert (await proxy.get(PLANS, headers=chain)).status_code == 429

    async with peer("192.0.2.10") as stranger:
        statuses = [
            (await stranger.get(PLANS, headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code
            for n in range(10, 13)
        ]
        assert statuses == [401, 401, 429], "an untrusted peer's X-Forwarded-For is ignored"


@pytest.mark.limits(rate_limits="1/minute")
async def test_probes_metrics_and_preflights_are_not_counted(client):
    for _ in range(3):
        for path in ("/healthz", "/readyz", "/metrics"):
            response = await client.get(path)
            assert response.status_code != 429, path
            assert "ratelimit-limit" not in response.headers, path
        preflight = await client.options(
            "/api/v1/servers/",
            headers={
                "Origin": "https://panel.example.com",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert preflight.status_code == 200
        assert "ratelimit-limit" not in preflight.headers

    first = await client.get(PLANS)
    assert first.status_code == 401
    assert limit_headers(first)[:2] == (1, 0)
    assert (await client.get(PLANS)).status_code == 429


@pytest.mark.limits(rate_limits="2/minute")
async def test_browsers_may_read_the_limit_headers(client):
    response = await client.get(PLANS, headers={"Origin": "https://panel.example.com"})
    exposed = {
        name.strip().lower()
        for name in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"} <= exposed


@pytest.mark.limits(rate_limits="")
async def test_empty_rate_limits_turn_them_off(client, user):
    for _ in range(30):
        response = await client.get(PLANS, headers=user.headers)
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers


async def test_openapi_says_any_operation_may_answer_429(client):
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    operation = paths["/api/v1/servers/"]["post"]
    schema = operation["responses"]["429"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorBody"}


@pytest.mark.limits(redis=True)
async def test_limits_in_redis_are_keyed_by_a_digest_never_the_token(client, user, redis_prefix):
    for _ in range(5):
        assert (await client.get(PLANS, headers=user.headers)).status_code == 200
    assert (await client.get(PLANS, headers=user.headers)).status_code == 429

    keys = redis_keys(redis_prefix)
    assert any("/address/127.0.0.1/" in key for key in keys), keys
    assert any("/token/" in key for key in keys), keys
    token_secret = user.token.removeprefix("vps_")
    assert not any(token_secret in key for key in keys)


@pytest.mark.limits(redis_url=f"redis://127.0.0.1:{free_port()}/0")
async def test_an_unreachable_redis_lets_requests_through_and_says_so_once(client, user, caplog):
    with caplog.at_level(logging.WARNING, logger="vpsorg.ratelimit"):
        for _ in range(10):
            response = await client.get(PLANS, headers=user.headers)
            assert response.status_code == 200
            assert "ratelimit-limit" not in response.headers

    warnings = [r for r in caplog.records if "rate limits are not enforced" in r.getMessage()]
    assert len(warnings) == 1
