"""Races across real processes: several API processes and several workers on one database.

A few hundred servers are created, stopped, started, rebooted and deleted at once, with
conflicting actions on the same server sent to different API processes. Afterwards:
every accepted action finished exactly once (the simulator's journal of hypervisor
operations matches the successful actions one to one), every server's status is what its
action history says, no address is held twice, and every account's ledger balances.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from collections import Counter
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.e2e.processes import Installation, User

SERVERS = 240
ACCOUNTS = 4
CLIENT_CONCURRENCY = 48
SLOW_SECONDS = 10.0  # requests slower than this are listed in the summary (never asserted)
LOG_TAIL_LINES = 30
KEEPALIVE_SECONDS = 2.0  # below uvicorn's timeout_keep_alive (5 s)
FINAL_STATUS = {"create": "active", "start": "active", "reboot": "active", "stop": "stopped",
                "delete": "deleted"}  # fmt: skip


class RequestFailed(Exception):
    """A request that got no response, named with the API process it was sent to."""


class Load:
    """Drives the API like many clients at once and remembers every accepted action."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self.clients = clients
        self.accepted: dict[int, tuple[int, str]] = {}  # action id -> (server id, command)
        self.statuses: Counter[int] = Counter()
        self.rejections: Counter[str] = Counter()
        self.gate = asyncio.Semaphore(CLIENT_CONCURRENCY)
        self.slow: list[tuple[str, str, str, float]] = []  # method, path, API process, seconds

    def client(self) -> httpx.AsyncClient:
        return random.choice(self.clients)

    async def request(self, user: User, method: str, path: str, **kw: Any) -> httpx.Response:
        client = self.client()
        async with self.gate:
            started = time.monotonic()
            try:
                response = await client.request(method, path, headers=user.headers, **kw)
            except Exception as exc:
                raise RequestFailed(
                    f"{method} {path} to {client.base_url} failed after "
                    f"{time.monotonic() - started:.1f} s: {type(exc).__name__}: {exc}"
                ) from exc
        seconds = time.monotonic() - started
        if seconds > SLOW_SECONDS:
            self.slow.append((method, path, str(client.base_url), round(seconds, 1)))
        self.statuses[response.status_code] += 1
        if response.status_code == 400:
            self.rejections[response.json()["code"]] += 1
        return response

    async def command(self, user: User, server_id: int, command: str) -> int | None:
        """Send a power command or a delete; return the accepted action's id, if any."""
        if command == "delete":
            response = await self.request(user, "DELETE", f"/api/v1/servers/{server_id}/")
            return -1 if response.status_code == 204 else None
        response = await self.request(user, "POST", f"/api/v1/servers/{server_id}/{command}/")
        if response.status_code != 200:
            return None
        action_id = int(response.json()["action"]["id"])
        self.accepted[action_id] = (server_id, command)
        return action_id

    async def wait(self, user: User, action_id: int) -> dict[str, Any]:
        response = await self.request(user, "GET", f"/api/v1/actions/{action_id}/?wait=30")
        body: dict[str, Any] = response.json()
        assert body["status"] == "success", body
        return body

    async def life(self, user: User, n: int) -> None:
        """One server's life, with bursts of conflicting commands."""
        created = await self.request(user, "POST", "/api/v1/servers/", json={
            "name": f"race-{n}", "plan_id": 3, "os_id": 3,
            "location": random.choice(["us-west", "us-east"]),
        })  # fmt: skip
        assert created.status_code == 201, created.text
        server_id = created.json()["id"]
        self.accepted[created.json()["action"]["id"]] = (server_id, "create")
        await self.wait(user, created.json()["action"]["id"])

        for burst in (["stop", "reboot", "stop"], ["start", "stop", "reboot"], ["reboot", "start"]):
            results = await asyncio.gather(*[self.command(user, server_id, c) for c in burst])
            for action_id in results:
                if action_id is not None:
                    await self.wait(user, action_id)
        if n % 2 == 0:
            await asyncio.gather(
                self.command(user, server_id, "delete"), self.command(user, server_id, "reboot")
            )


def _rows(database_url: str, sql: str) -> list[Any]:
    url = re.sub(r"^postgresql(\+\w+)?://", "postgresql+psycopg://", database_url)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))
    finally:
        engine.dispose()


async def test_many_processes_racing_keep_every_invariant(installation_with):
    installation = installation_with(simulator_delay=0.01, action_lease_seconds=10)
    users = [installation.create_user(f"racer-{n}", credits=1000) for n in range(ACCOUNTS)]
    for user in users:
        installation.run("accounts", "limit", str(user.account_id), str(SERVERS))
    api_urls = [installation.serve("--no-worker").base_url for _ in range(3)]
    for _ in range(2):
        installation.worker("--concurrency", "4")

    started = time.monotonic()
    # Idle connections are dropped by the client well before uvicorn closes them (after 5 s,
    # httpx's default expiry too): a request sent on a connection the server is closing gets
    # "Server disconnected without sending a response".
    limits = httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS)
    clients = [
        httpx.AsyncClient(base_url=url, timeout=60, limits=limits, trust_env=False)
        for url in api_urls
    ]
    try:
        load = Load(clients)
        await asyncio.gather(*[
            load.life(user, n) for n, user in zip(range(SERVERS), itertools.cycle(users))
        ])  # fmt: skip
    except Exception as exc:
        raise AssertionError(
            f"the load failed after {time.monotonic() - started:.1f} s: "
            f"{type(exc).__name__}: {exc}\nslow requests: {load.slow}\n{_log_tails(installation)}"
        ) from exc
    finally:
        for client in clients:
            await client.aclose()
    db = installation.database_url

    deadline = time.monotonic() + 60
    while _rows(db, "SELECT id FROM actions WHERE status IN ('pending', 'running')"):
        assert time.monotonic() < deadline, "actions still unfinished after 60 s"
        await asyncio.sleep(0.2)
    elapsed = time.monotonic() - started
    actions = _rows(db, "SELECT id, server_id, command, status FROM actions ORDER BY id")
    print(
        f"\n{SERVERS} servers, {len(actions)} actions through 3 API and 2 worker processes "
        f"in {elapsed:.1f} s; responses {dict(load.statuses)}; 400s {dict(load.rejections)}; "
        f"requests over {SLOW_SECONDS:g} s: {load.slow or 'none'}"
    )

    # No request failed for a reason other than the state rules (a reboot that lands just
    # after its server's delete finds no server: a 404, at most once per deleted server).
    assert set(load.statuses) <= {200, 201, 204, 400, 404}, load.statuses
    assert load.statuses[404] <= SERVERS // 2
    assert set(load.rejections) <= {"invalid_state"}, load.rejections
    assert load.rejections["invalid_state"] > SERVERS  # the bursts really did conflict

    # Every accepted action exists and finished successfully, once; nothing else was queued.
    by_id = {row.id: row for row in actions}
    for action_id, (server_id, command) in load.accepted.items():
        assert (by_id[action_id].server_id, by_id[action_id].command) == (server_id, command)
    assert all(row.status == "success" for row in actions), [
        r for r in actions if r.status != "success"
    ]
    deletes = [row for row in actions if row.command == "delete"]
    assert set(by_id) == set(load.accepted) | {row.id for row in deletes}

    # The hypervisor did each accepted operation exactly once.
    journal = Counter((e["machine"], e["op"]) for e in _journal(installation))
    expected = Counter((f"vps-{row.server_id}", row.command) for row in actions)
    assert journal == expected, (
        f"done but not accepted: {journal - expected}; accepted but not done: {expected - journal}"
        f"\n{_log_tails(installation)}"  # a worker that lost a lease says so in its log
    )

    # Each server's status is the one its history leads to.
    history: dict[int, list[str]] = {}
    for row in actions:
        history.setdefault(row.server_id, []).append(row.command)
    servers = _rows(db, "SELECT id, status, ipv4_address, ipv6_address FROM servers")
    assert len(servers) == SERVERS
    for server in servers:
        assert server.status == FINAL_STATUS[history[server.id][-1]], (server, history[server.id])
        if server.status == "deleted":
            assert (server.ipv4_address, server.ipv6_address) == (None, None)

    # No address is held twice, and every ledger balances.
    for column in ("ipv4_address", "ipv6_address"):
        assert not _rows(db, f"SELECT {column} FROM servers WHERE {column} IS NOT NULL "
                             f"GROUP BY {column} HAVING count(*) > 1")  # fmt: skip
    assert not _rows(
        db,
        """
        SELECT a.id FROM accounts a LEFT JOIN credit_entries e ON e.account_id = a.id
        GROUP BY a.id, a.balance_micros
        HAVING a.balance_micros != coalesce(sum(e.amount_micros), 0)""",
    )


def _log_tails(installation: Installation) -> str:
    parts = []
    for title, text in installation.logs():
        tail = "\n".join(text.splitlines()[-LOG_TAIL_LINES:]) or "(empty)"
        parts.append(f"--- {title}, last {LOG_TAIL_LINES} lines:\n{tail}")
    return "\n".join(parts)


def _journal(installation: Installation) -> list[dict[str, Any]]:
    from vpsorg.drivers.simulator import SimulatorDriver

    return SimulatorDriver(installation.simulator_dir).journal()
