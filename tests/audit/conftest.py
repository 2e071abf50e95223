"""Readers of the audit trail: as the customer sees it, and as the operator does."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import User
from vpsorg.audit import repository
from vpsorg.audit.models import AuditEvent
from vpsorg.db import transaction
from vpsorg.runtime import Runtime


async def events(client: httpx.AsyncClient, user: User, **params: Any) -> list[dict[str, Any]]:
    """The caller's events, newest first (one page of up to 200)."""
    response = await client.get(
        "/api/v1/account/events/", params={"per_page": 200, **params}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def every_event(runtime: Runtime) -> list[AuditEvent]:
    """All events, of every account and of none, newest first."""
    async with transaction(runtime.read_sessions) as session:
        return list(await repository.latest(session, None, 1000))
