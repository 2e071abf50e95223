"""What each scenario does per iteration, and the servers the vpsorg scenarios share."""

from __future__ import annotations

import asyncio
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from bench.database import finish_times
from bench.errors import BenchError
from bench.http import Connection
from bench.load import Recorder, describe

SEEDED_SERVERS = 50
SEED_CONNECTIONS = 8
SEED_LOCATION = "us-east"  # leaves us-west's /24 of addresses to the create scenario
CREATE_LOCATION = "us-west"
LONG_POLL_SECONDS = 30
INVALID_CREATE = {"name": "-bad-", "plan_id": 1, "os_id": 5, "location": "us-west", "hostnme": "x"}


def create_body(name: str, location: str = CREATE_LOCATION) -> dict[str, Any]:
    """The spec's example body for POST /api/v1/servers/, with a name of our own."""
    return {
        "name": name,
        "plan_id": 1,
        "os_id": 5,
        "location": location,
        "hostname": f"{name}.example.com",
        "backups_enabled": True,
    }


def bearer(token: str) -> dict[str, str]:
    """The two headers every example of the spec sends."""
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def finished_action(client: Connection, action_id: int) -> dict[str, Any]:
    """Long-poll GET /api/v1/actions/ID/?wait= until the action is no longer running."""
    while True:
        path = f"/api/v1/actions/{action_id}/?wait={LONG_POLL_SECONDS}"
        action: dict[str, Any] = (await client.get(path)).expect(200).json()
        if action["status"] != "running":
            return action


class Scenario(ABC):
    name: str
    rows: tuple[str, ...]
    """The result rows it records, the first being the request the scenario is named after."""
    warmup = 5
    """Unrecorded iterations per worker before measuring."""
    service = "vpsorg"
    """The server it measures: ``vpsorg``, ``reference`` or ``same-work``."""
    token: str | None = None
    """The Bearer token its connections send; None: the fixture's account (or none at all)."""

    def workers(self, concurrency: int) -> int:
        return concurrency

    @abstractmethod
    async def once(
        self, client: Connection, worker: int, iteration: int, recorder: Recorder
    ) -> None: ...

    async def settle(self, recorder: Recorder) -> None:
        """Record what can only be worked out once the measuring has ended (most: nothing)."""
        return None


class Reference(Scenario):
    name = "reference"
    service = "reference"

    def __init__(self, row: str = "reference") -> None:
        self.rows = (row,)

    async def once(
        self, client: Connection, worker: int, iteration: int, recorder: Recorder
    ) -> None:
        started = time.perf_counter()
        recorder.expect(self.rows[0], await client.get("/"), 200, started)


class ListServers(Scenario):
    name = "list"
    rows = ("list",)

    async def once(
        self, client: Connection, worker: int, iteration: int, recorder: Recorder
    ) -> None:
        started = time.perf_counter()
        recorder.expect("list", await client.get("/api/v1/servers/"), 200, started)


class ServerDetail(Scenario):
    name = "detail"
    rows = ("detail",)

    def __init__(self, server_ids: list[int]) -> None:
        self.server_ids = server_ids

    async def once(
        self, client: Connection, worker: int, iteration: int, recorder: Recorder
    ) -> None:
        server_id = self.server_ids[(worker * 7 + iteration) % len(self.server_ids)]
        started = time.perf_counter()
        response = await client.get(f"/api/v1/servers/{server_id}/")
        recorder.expect("detail", response, 200, started)


class RejectedCreate(Scenario):
    name = "errors"
    rows = ("errors",)

    async def once(
        self, client: Connection, worker: int, iteration: int, recorder: Recorder
    ) -> None:
        started = time.perf_counter()
        response = await client.post("/api/v1/servers/", INVALID_CREATE)
        recorder.expect("errors", response, 400, started)


class Power(Scenario):
    """Each worker stops and starts a server of its own, waiting for each action to finish."""

    name = "power"
    rows: tuple[str, ...] = ("power", "power->done")
    warmup = 2  # one stop and one start

    def __init__(self, server_ids: list[int]) -> None:
        self.server_ids = server_ids
        self.next_command: dict[int, str] = {}

    def workers(self, concurrency: int) -> int:
        return min(concurrency, len(self.server_ids))

    async def once(
        self, client: Connection, worker: int, iteration: int, recorder: Recorder
    ) -> None:
        server_id = self.server_ids[worker]
        command = self.next_command.get(worker, "stop")
        started = time.perf_counter()
        response = await client.post(f"/api/v1/servers/{server_id}/{command}/")
        if not recorder.expect("power", response, 200, started):
            await self._resync(client, worker)
            return
        action = await finished_action(client, response.json()["action"]["id"])
        if action["status"] != "success":
            recorder.failure("power->done", f"{command} action ended {action}")
            await self._resync(client, worker)
            return
        recorder.success("power->done", time.perf_counter() - started)
        self.next_command[worker] = "start" if command == "stop" else "stop"

    async def _resync(self, client: Connection, worker: int) -> None:
        """After a failure, pick the command the server's current status allows."""
        response = await client.get(f"/api/v1/servers/{self.server_ids[worker]}/")
        if response.status_code == 200:
            self.next_command[worker] = (
                "start" if response.json()["status"] == "stopped" else "stop"
            )


class Wake(Power):
    """The same stop and start commands as ``power``, timing how long after each action finished
    its long-poll answered.

    The API gives ``finished_at`` to the second, so the finish times are read from the database
    once the measuring has ended (nothing extra runs meanwhile); the answer times are the client's
    clock, which is the same machine's.
    """

    name = "wake"
    rows = ("wake",)

    def __init__(self, server_ids: list[int], database_url: str) -> None:
        super().__init__(server_ids)
        self.database_url = database_url
        self.long_polls: list[LongPoll] = []

    async def once(
        self, client: Connection, worker: int, iteration: int, recorder: Recorder
    ) -> None:
        command = self.next_command.get(worker, "stop")
        response = await client.post(f"/api/v1/servers/{self.server_ids[worker]}/{command}/")
        if response.status_code != 200:
            recorder.failure("wake", describe(response, "expected 200"))
            await self._resync(client, worker)
            return
        action_id = int(response.json()["action"]["id"])
        asked = time.time()
        path = f"/api/v1/actions/{action_id}/?wait={LONG_POLL_SECONDS}"
        action = (await client.get(path)).expect(200).json()
        answered = time.time()
        if action["status"] != "success":
            recorder.failure("wake", f"{command} action ended {action}")
            await self._resync(client, worker)
            return
        if iteration >= self.warmup:
            self.long_polls.append(LongPoll(action_id, asked, answered))
        self.next_command[worker] = "start" if command == "stop" else "stop"

    async def settle(self, recorder: Recorder) -> None:
        ids = [poll.action_id for poll in self.long_polls]
        finished = await asyncio.to_thread(finish_times, self.database_url, ids)
        early = 0
        for poll in self.long_polls:
            at = finished.get(poll.action_id)
            if at is None:
                recorder.failure("wake", f"action {poll.action_id} has no finished_at")
            elif at > poll.asked:
                recorder.success("wake", poll.answered - at)
            else:  # it had finished before the long-poll was sent: there was nothing to wake
                early += 1
        if early:
            print(
                f"bench: wake: {early} of {len(self.long_polls)} actions had finished before "
                "their long-poll was sent; left out",
                file=sys.stderr,
            )


@dataclass(frozen=True)
class LongPoll:
    """One long-poll of ``wake``, by the client's wall clock (Unix time)."""

    action_id: int
    asked: float
    answered: float


class Create(Scenario):
    """POST a server, long-poll its create action until it is active, then delete it.

    Deleting keeps the location's address pool (a /24) from running out however long it runs.
    """

    name = "create"
    rows = ("create", "create->active", "delete")
    warmup = 1

    async def once(
        self, client: Connection, worker: int, iteration: int, recorder: Recorder
    ) -> None:
        started = time.perf_counter()
        response = await client.post("/api/v1/servers/", create_body(f"b-{worker}-{iteration}"))
        if not recorder.expect("create", response, 201, started):
            return
        created = response.json()
        action = await finished_action(client, created["action"]["id"])
        if action["status"] != "success":
            recorder.failure("create->active", f"create action ended {action}")
            return
        recorder.success("create->active", time.perf_counter() - started)
        started = time.perf_counter()
        response = await client.delete(f"/api/v1/servers/{created['id']}/")
        recorder.expect("delete", response, 204, started)


@dataclass(frozen=True)
class Fixture:
    """What the vpsorg scenarios share: one account's token, its seeded servers, the database."""

    token: str
    server_ids: list[int]
    database_url: str


def build(name: str, fixture: Fixture | None) -> Scenario:
    if name == "reference":
        return Reference()
    if fixture is None:
        raise BenchError(f"scenario {name} needs vpsorg's account and servers")
    match name:
        case "list":
            return ListServers()
        case "detail":
            return ServerDetail(fixture.server_ids)
        case "errors":
            return RejectedCreate()
        case "power":
            return Power(fixture.server_ids)
        case "wake":
            return Wake(fixture.server_ids, fixture.database_url)
        case "create":
            return Create()
    raise BenchError(f"unknown scenario {name}")


async def seed_servers(port: int, token: str, count: int = SEEDED_SERVERS) -> list[int]:
    """Create ``count`` active servers in the account, as a client would; return their ids."""
    numbers = iter(range(count))  # shared by the connections below

    async def create_some(client: Connection) -> list[int]:
        ids = []
        for n in numbers:
            response = await client.post(
                "/api/v1/servers/", create_body(f"seed-{n}", SEED_LOCATION)
            )
            if response.status_code != 201:
                raise BenchError(f"seeding failed: {describe(response, 'expected 201')}")
            action = await finished_action(client, response.json()["action"]["id"])
            if action["status"] != "success":
                raise BenchError(f"seeding failed: create action ended {action}")
            ids.append(int(response.json()["id"]))
        return ids

    connections = [Connection("127.0.0.1", port, bearer(token)) for _ in range(SEED_CONNECTIONS)]
    try:
        batches = await asyncio.gather(*(create_some(c) for c in connections))
        listed = (await connections[0].get("/api/v1/servers/")).json()
    finally:
        for connection in connections:
            await connection.close()
    if listed.get("count") != count:
        raise BenchError(f"expected {count} servers after seeding, the list says {listed}")
    return sorted(i for batch in batches for i in batch)
