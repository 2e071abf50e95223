"""Rate-limit fixtures: an app whose limits a test chooses, clients at chosen addresses, Redis.

``@pytest.mark.limits(rate_limits="5/minute", ...)`` sets the app's settings (the rest of the
suite runs with limits off). Redis is 127.0.0.1:6379 (scripts/ensure-redis); each test keys
its counts under a prefix of its own. Without Redis those tests skip, saying why; with
``VPSORG_REQUIRE_REDIS`` set (CI: .ci/run) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import redis
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.e2e.conftest import installations, pytest_runtest_makereport
from vpsorg.config import Settings

if TYPE_CHECKING:
    from tests.conftest import DatabaseProvider

__all__ = ["installations", "pytest_runtest_makereport"]

REDIS_URL = "redis://127.0.0.1:6379/0"

PeerClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "limits(**settings): the app's rate-limit settings (redis=True: in Redis)"
    )


@pytest.fixture
def settings(
    databases: DatabaseProvider, tmp_path: Path, request: pytest.FixtureRequest
) -> Settings:
    marker = request.node.get_closest_marker("limits")
    overrides = {"rate_limits": "5/minute", **(marker.kwargs if marker else {})}
    if overrides.pop("redis", False):
        overrides["redis_url"] = REDIS_URL
        overrides["redis_key_prefix"] = request.getfixturevalue("redis_prefix")
    return make_settings(databases.fresh(tmp_path), tmp_path, **overrides)


@pytest.fixture
def peer(app: FastAPI) -> PeerClient:
    """``async with peer("192.0.2.7") as client``: a client whose connection comes from there."""

    @asynccontextmanager
    async def connect(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http

    return connect


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the test Redis; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis does not answer on {REDIS_URL} ({exc}); run scripts/ensure-redis"
        if os.environ.get("VPSORG_REQUIRE_REDIS"):
            pytest.fail(f"VPSORG_REQUIRE_REDIS is set but {reason}", pytrace=False)
        pytest.skip(reason)
    prefix = f"vpsorg-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def redis_keys(prefix: str) -> list[str]:
    with redis.Redis.from_url(REDIS_URL) as client:
        return sorted(key.decode() for key in client.scan_iter(f"{prefix}:*"))
