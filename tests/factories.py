"""Factories: accounts with tokens, servers in a given state, all through real code paths."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from vpsorg.accounts import service as accounts
from vpsorg.auth.tokens import create_token
from vpsorg.db import transaction
from vpsorg.runtime import Runtime

SERVER = {"name": "web-server-02", "plan_id": 1, "os_id": 5, "location": "us-west",
          "hostname": "web02.example.com", "backups_enabled": True}  # fmt: skip


# A syntactically real ed25519 key: the 32 key bytes spell "just-a-test-key-for-vpsorg-tests".
ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGp1c3QtYS10ZXN0LWtleS1mb3ItdnBzb3JnLXRlc3Rz user@example"
)


@dataclass
class User:
    account_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}


class Factory:
    def __init__(self, runtime: Runtime, client: httpx.AsyncClient) -> None:
        self.runtime = runtime
        self.client = client

    async def account(self, credits: float = 100, name: str = "customer") -> User:
        async with transaction(self.runtime.sessions) as session:
            account = await accounts.create_account(session, name, accounts.to_micros(credits))
            _row, token = await create_token(session, account.id)
        return User(account.id, token)

    async def server(
        self, user: User, wait: str | None = "active", **fields: Any
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/servers/", json={**SERVER, **fields}, headers=user.headers
        )
        assert response.status_code == 201, response.text
        server: dict[str, Any] = response.json()
        if wait:
            server = {**await self.wait_for(user, server["id"], wait), "action": server["action"]}
        return server

    async def wait_for(
        self, user: User, server_id: int, status: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            response = await self.client.get(f"/api/v1/servers/{server_id}/", headers=user.headers)
            body: dict[str, Any] = response.json()
            if response.status_code == 200 and body["status"] == status:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"server {server_id} never reached {status!r}: {body}")
            await asyncio.sleep(0.02)

    async def balance(self, user: User) -> int:
        from vpsorg.accounts.models import Account

        async with transaction(self.runtime.sessions) as session:
            account = await session.get(Account, user.account_id)
            assert account is not None
            return account.balance_micros
