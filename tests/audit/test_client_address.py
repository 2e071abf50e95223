"""The recorded client address is the one the rate limiter uses: through trusted proxies only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audit.conftest import events
from tests.conftest import DatabaseProvider, make_settings
from vpsorg.config import Settings


@pytest.fixture
def settings(databases: DatabaseProvider, tmp_path: Path) -> Settings:
    """Behind a trusted proxy on 127.0.0.1, where httpx's ASGI transport connects from."""
    return make_settings(databases.fresh(tmp_path), tmp_path, trusted_proxies="127.0.0.1")


async def test_the_client_address_is_read_through_trusted_proxies(client, user):
    headers = {**user.headers, "X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    await client.patch("/api/v1/servers/7/", json={"name": "x"}, headers=headers)

    [event] = await events(client, user)

    assert event["client_address"] == "203.0.113.9"
