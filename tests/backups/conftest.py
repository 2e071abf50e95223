"""Helpers for the backups tests: waiting for an action, reading the simulator's disks."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import User


async def finished(client: httpx.AsyncClient, user: User, action: dict[str, Any]) -> dict[str, Any]:
    """The action once it has finished (long-polls)."""
    response = await client.get(f"/api/v1/actions/{action['id']}/?wait=10", headers=user.headers)
    body: dict[str, Any] = response.json()
    assert body["status"] in ("success", "error"), body
    return body


async def snapshot(
    client: httpx.AsyncClient, user: User, server_id: int, name: str = "snap"
) -> dict[str, Any]:
    """Take a snapshot and wait for it; returns the created body."""
    response = await client.post(
        f"/api/v1/servers/{server_id}/snapshots/", json={"name": name}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert (await finished(client, user, body["action"]))["status"] == "success"
    return body


async def backups_of(client: httpx.AsyncClient, user: User, server_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/servers/{server_id}/backups/", headers=user.headers)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results
