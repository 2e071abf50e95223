"""Operators' changes through the ``vpsorg`` command are recorded, and ``vpsorg audit`` lists them."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

from tests.audit.conftest import events
from tests.e2e.processes import Installation
from tests.factories import User

if TYPE_CHECKING:
    from vpsorg.config import Settings


async def test_accounts_credit_is_recorded_as_an_operator_change(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    installation = Installation(settings.database_url, settings.simulator_state_dir.parent)
    created = await asyncio.to_thread(installation.create_user, "alice", 10)
    await asyncio.to_thread(installation.run, "accounts", "credit", str(created.account_id), "25")
    user = User(created.account_id, created.token)

    credit, token, create = await events(client, user)

    account = created.account_id
    assert credit["actor"] == "operator"
    assert (credit["method"], credit["path"]) == ("CLI", f"accounts credit {account} 25")
    assert credit["resource"] == f"account:{account}"
    assert (credit["outcome"], credit["status"], credit["token_id"]) == ("success", None, None)
    assert credit["client_address"] == "local"
    assert len(credit["request_id"]) == 32
    assert token["path"] == f"tokens create {account}"
    assert token["resource"].startswith("token:")
    assert create["path"] == "accounts create alice --credits 10"


async def test_a_failed_command_records_nothing(settings: Settings) -> None:
    installation = Installation(settings.database_url, settings.simulator_state_dir.parent)

    missing = await asyncio.to_thread(
        installation.run, "accounts", "credit", "999", "5", check=False
    )
    listed = await asyncio.to_thread(installation.run, "audit")

    assert missing.returncode == 1
    assert listed.stdout.strip().count("\n") == 0  # the header only


async def test_vpsorg_audit_lists_an_accounts_events_newest_first(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    installation = Installation(settings.database_url, settings.simulator_state_dir.parent)
    alice = await asyncio.to_thread(installation.create_user, "alice")
    bob = await asyncio.to_thread(installation.create_user, "bob")
    await asyncio.to_thread(installation.run, "accounts", "credit", str(alice.account_id), "25")
    refused = await client.post(
        "/api/v1/servers/999/stop/",
        headers={"Authorization": f"Bearer {alice.token}", "X-Request-ID": "req-alice-1"},
    )
    assert refused.status_code == 404

    result = await asyncio.to_thread(
        installation.run, "audit", "--account", str(alice.account_id), "--limit", "3"
    )

    header, *lines = result.stdout.splitlines()
    assert header.split()[:3] == ["ID", "TIME", "ACCOUNT"]
    assert len(lines) == 3
    assert "POST /api/v1/servers/999/stop/" in lines[0]
    assert "refused" in lines[0] and "(not_found)" in lines[0] and "[req-alice-1]" in lines[0]
    assert "server:999" in lines[0] and "token:" in lines[0]
    assert "operator" in lines[1] and f"CLI accounts credit {alice.account_id} 25" in lines[1]
    assert f"CLI tokens create {alice.account_id}" in lines[2]
    assert all(f"tokens create {bob.account_id}" not in line for line in lines)
    everything = await asyncio.to_thread(installation.run, "audit")
    assert "CLI accounts create bob" in everything.stdout
