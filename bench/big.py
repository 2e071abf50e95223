"""The scenarios on the big datasets: vpsorg against the same-work reference, and creates.

Each read runs twice in a row, on vpsorg and on ``bench.same_work`` (the same queries and the
same JSON, hand-written), with the same client, connections and token; the figure to quote is
their ratio. Before measuring, ``check_same_bodies`` asks both servers for each path and
requires the same bytes, so "the same work" is checked, not claimed.
"""

from __future__ import annotations

import asyncio
import difflib
import itertools
import time
from dataclasses import dataclass
from typing import Any

from bench.cpu import process_cpu_seconds
from bench.datasets import Dataset
from bench.errors import BenchError
from bench.http import Connection
from bench.load import Recorder
from bench.report import Row
from bench.scenarios import Scenario, bearer, create_body

READ_CONNECTIONS = 16
"""As the issue measured with ``wrk -c16``: enough to keep one server process saturated."""
DETAIL_SERVER = 5000
PER_PAGE = 50
FAR_PAGE = 200
CREATE_LOCATION = "us-west"


@dataclass(frozen=True)
class Read:
    scenario: str
    path: str


def reads(dataset: Dataset) -> dict[str, Read]:
    """The three requests of the issue, on the 10k account (server 5000 is its middle one)."""
    ids = dataset.server_ids[0]
    server_id = ids[min(DETAIL_SERVER, len(ids)) - 1]
    return {
        "detail-10k": Read("detail-10k", f"/api/v1/servers/{server_id}/"),
        "list-10k": Read("list-10k", f"/api/v1/servers/?per_page={PER_PAGE}"),
        "page200-10k": Read("page200-10k", f"/api/v1/servers/?page={FAR_PAGE}&per_page={PER_PAGE}"),
    }


SAME_WORK = " (same work)"


class BigRead(Scenario):
    """One GET in a closed loop, on vpsorg or on the same-work reference."""

    def __init__(self, read: Read, token: str, service: str) -> None:
        self.name = read.scenario
        self.path = read.path
        self.token = token
        self.service = service
        self.rows = (read.scenario + (SAME_WORK if service == "same-work" else ""),)

    def workers(self, concurrency: int) -> int:
        return READ_CONNECTIONS

    async def once(
        self, client: Connection, worker: int, iteration: int, recorder: Recorder
    ) -> None:
        started = time.perf_counter()
        recorder.expect(self.rows[0], await client.get(self.path), 200, started)


class ManyCreates(Scenario):
    """``POST /api/v1/servers/`` from 100 accounts in turn, each from a new name; the 201 is
    timed. ``bench.drain`` runs it on an API process without a worker, so only the API's work
    is counted, and the actions it queues are what the workers then drain.

    The accounts are taken in the order the requests are sent, whichever connection sends
    them, so the requests in flight at once are of different accounts (each create holds its
    account's row lock until it commits). Before 2026-11-28 the account was the iteration's,
    so the C connections, in step, all created in one account at a time, waiting on each
    other's lock.
    """

    name = "create-100"
    warmup = 2

    def __init__(
        self,
        tokens: list[str],
        row: str = "create-100",
        location: str = CREATE_LOCATION,
        *,
        keyed: bool = False,
    ) -> None:
        self.tokens = tokens
        self.location = location
        self.keyed = keyed
        """Send each create with an ``Idempotency-Key`` of its own."""
        self.token = ""  # no Authorization on the connection: each request sends its own
        self.rows = (row,)
        self.action_ids: list[int] = []
        """The create actions of every server it made (warm-up included)."""
        self.sent = itertools.count()

    async def once(
        self, client: Connection, worker: int, iteration: int, recorder: Recorder
    ) -> None:
        token = self.tokens[next(self.sent) % len(self.tokens)]
        name = f"c-{worker}-{iteration}"
        body = create_body(name, self.location)
        headers = bearer(token)
        if self.keyed:
            headers["Idempotency-Key"] = f"{self.location}-{name}"
        started = time.perf_counter()
        response = await client.post("/api/v1/servers/", body, headers)
        if recorder.expect(self.rows[0], response, 201, started):
            self.action_ids.append(int(response.json()["action"]["id"]))


async def check_same_bodies(
    vpsorg_port: int, same_work_port: int, token: str, paths: list[str]
) -> None:
    """Both servers answer each path with the same bytes (links aside, which name the port)."""
    bodies: list[dict[str, bytes]] = []
    for port in (vpsorg_port, same_work_port):
        async with Connection("127.0.0.1", port, bearer(token)) as client:
            answers = {}
            for path in paths:
                response = (await client.get(path)).expect(200)
                answers[path] = response.content.replace(f"127.0.0.1:{port}".encode(), b"HOST")
            bodies.append(answers)
    for path in paths:
        ours, theirs = bodies[0][path], bodies[1][path]
        if ours != theirs:
            diff = difflib.unified_diff(
                _lines(ours), _lines(theirs), "vpsorg", "same-work", lineterm=""
            )
            raise BenchError(f"GET {path}: the two servers' bodies differ:\n" + "\n".join(diff))


def _lines(body: bytes) -> list[str]:
    return body.decode().replace(",", ",\n").splitlines()[:400]


# -- the comparison -----------------------------------------------------------------------


def comparison(rows: list[Row]) -> str:
    """vpsorg against the same-work reference, per read: throughput, latency, CPU."""
    by_name = {r.row: r for r in rows}
    lines = []
    for name in ("detail-10k", "list-10k", "page200-10k"):
        ours, theirs = by_name.get(name), by_name.get(name + SAME_WORK)
        if ours is None or theirs is None:
            continue
        lines.append(
            (
                name,
                _n(ours.per_second, 0),
                _n(theirs.per_second, 0),
                _percent(ours.per_second, theirs.per_second),
                f"{_n(ours.median_ms, 1)} / {_n(theirs.median_ms, 1)}",
                f"{_n(ours.p95_ms, 1)} / {_n(theirs.p95_ms, 1)}",
                f"{_n(ours.server_cpu_ms, 2)} / {_n(theirs.server_cpu_ms, 2)}",
            )
        )
    if not lines:
        return ""
    header = (
        "request",
        "vpsorg req/s",
        "same work req/s",
        "vpsorg/same",
        "median ms (v/s)",
        "p95 ms (v/s)",
        "srv cpu ms/req (v/s)",
    )
    widths = [max(len(c[i]) for c in [header, *lines]) for i in range(len(header))]
    text = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        for cells in [header, *lines]
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    far, first = by_name.get("page200-10k"), by_name.get("list-10k")
    for suffix, label in (("", "vpsorg"), (SAME_WORK, "same work")):
        far, first = by_name.get("page200-10k" + suffix), by_name.get("list-10k" + suffix)
        if far and first and far.median_ms and first.median_ms:
            text.append(
                f"page 200 / page 1, median latency, {label}: {far.median_ms / first.median_ms:.2f}x"
            )
    return "\n".join(text)


def _n(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _percent(ours: float, theirs: float) -> str:
    return f"{ours / theirs * 100:.0f}%" if theirs else "-"


IDLE_SECONDS = 30.0
"""The period of the embedded worker's sweeps over every server (usage, reconciler)."""


async def idle_cpu_percent(pid: int, seconds: float = IDLE_SECONDS) -> float | None:
    """The share of one core a process uses while no request arrives, over ``seconds``."""
    start = process_cpu_seconds(pid)
    await asyncio.sleep(seconds)
    end = process_cpu_seconds(pid)
    return None if start is None or end is None else (end - start) / seconds * 100


def rss_line(rss: dict[str, Any]) -> str:
    parts = [f"{name} {mb:.0f} MB" for name, mb in rss.items() if mb is not None]
    return "resident memory after the runs: " + ", ".join(parts) if parts else ""
