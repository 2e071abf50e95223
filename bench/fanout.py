"""``longpoll``: 1,000 long-polls held at once by one API process, woken as their actions finish.

It runs after ``drain``, on its API process without a worker (``bench.drain``):

1. start one worker (``--concurrency 100``, ``VPSORG_SIMULATOR_DELAY=1``: at most 100 actions
   finish a second, so 1,000 finish over 10 s or more), wait until it idles, freeze it;
2. queue a stop of 1,000 servers of the 100-account dataset (ten per account), through the API;
3. open 1,000 connections, each sending ``GET /api/v1/actions/{id}/?wait=60`` for one action,
   give them ``HOLD_SECONDS`` to be held, then wait until the API process idles (it has
   taken every request in and is only waiting: 1,000 requests take it a few seconds of CPU
   on a busy machine, and their tail would otherwise be counted as wake-up delay);
4. thaw the worker; each figure is the client's clock when its answer arrived minus the
   action's ``finished_at`` (from the database, to the microsecond), as for the ``wake`` row.

The row gives the median and p95 of that delay and how many answers came within 100 ms; the
server CPU is the API process's, per long-poll, from the thaw to the last answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench.cpu import process_cpu_seconds
from bench.database import action_outcomes
from bench.datasets import Dataset
from bench.drain import QUIET_JOBS, stop_worker, wait_idle
from bench.errors import BenchError
from bench.http import Connection
from bench.options import Options
from bench.processes import Service, start_worker
from bench.report import Row, percentile
from bench.scenarios import bearer

LONG_POLLS = 1000
WORKER_CONCURRENCY = 100
SIMULATOR_DELAY = "1"
POLL_INTERVAL = "10"
WAIT_SECONDS = 60
HOLD_SECONDS = 3.0
QUEUE_CONNECTIONS = 8
OPEN_AT_ONCE = 100
"""Connections opened at a time: 1,000 SYNs at once could overflow the listen backlog."""
ANSWER_WITHIN = 0.1


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


async def measure_fanout(
    options: Options,
    api: Service,
    many: Dataset,
    env: dict[str, str],
    database_url: str,
    workdir: Path,
    stack: ExitStack,
) -> tuple[Row, str]:
    worker_env = {
        **env,
        **QUIET_JOBS,
        "VPSORG_SIMULATOR_DELAY": SIMULATOR_DELAY,
        # Not needed to look idle any more (a worker has one claim loop, not one per slot,
        # since issue 12), but kept so runs compare: once thawed, a finishing action wakes
        # the claim loop, so this costs no speed.
        "VPSORG_WORKER_POLL_INTERVAL": POLL_INTERVAL,
    }
    cpu = 1 % (os.cpu_count() or 1) if options.pin else None
    worker = start_worker(worker_env, workdir, "vpsorg-worker-fanout", WORKER_CONCURRENCY, cpu)
    stack.callback(stop_worker, worker)
    await wait_idle([worker])
    os.kill(worker.pid, signal.SIGSTOP)
    progress(f"longpoll: queueing {LONG_POLLS} stops, the worker frozen")
    action_ids, tokens = await _queue_stops(api, many)
    progress(f"longpoll: holding {len(action_ids)} long-polls")
    connections = [Connection("127.0.0.1", api.port) for _ in action_ids]
    try:
        for start in range(0, len(connections), OPEN_AT_ONCE):
            await asyncio.gather(*(c.open() for c in connections[start : start + OPEN_AT_ONCE]))
        polls = [
            asyncio.create_task(_long_poll(c, a, t))
            for c, a, t in zip(connections, action_ids, tokens, strict=True)
        ]
        await asyncio.sleep(HOLD_SECONDS)
        await wait_idle([api])
        cpu_start = process_cpu_seconds(api.pid)
        os.kill(worker.pid, signal.SIGCONT)
        progress("longpoll: the worker thawed")
        answers = await asyncio.gather(*polls, return_exceptions=True)
        cpu_end = process_cpu_seconds(api.pid)
    finally:
        for connection in connections:
            with contextlib.suppress(OSError):
                await connection.close()
        stop_worker(worker)
    outcomes = await asyncio.to_thread(action_outcomes, database_url, action_ids)
    delays, failures = [], 0
    for action_id, answer in zip(action_ids, answers, strict=True):
        status, finished = outcomes.get(action_id, ("missing", None))
        if isinstance(answer, BaseException) or finished is None or status != "success":
            failures += 1
        else:
            delays.append(answer - finished)
    finishes = [at for _, at in outcomes.values() if at is not None]
    spread = max(finishes) - min(finishes) if finishes else 0.0
    within = sum(1 for d in delays if d <= ANSWER_WITHIN)
    server_cpu = None
    if cpu_start is not None and cpu_end is not None:
        server_cpu = (cpu_end - cpu_start) / len(action_ids) * 1000
    row = Row(
        row="longpoll",
        scenario="longpoll",
        workers=len(action_ids),
        requests=len(action_ids),
        failures=failures,
        median_ms=percentile(delays, 0.5) * 1000 if delays else None,
        p95_ms=percentile(delays, 0.95) * 1000 if delays else None,
        per_second=len(delays) / spread if spread > 0 else 0.0,
        server_cpu_ms=server_cpu,
    )
    worst = max(delays) * 1000 if delays else 0.0
    summary = (
        f"longpoll: {len(action_ids)} long-polls held by one API process; their actions finished "
        f"over {spread:.1f} s; {within} of {len(delays)} answered within "
        f"{ANSWER_WITHIN * 1000:.0f} ms of finishing (worst {worst:.0f} ms)"
    )
    return row, summary


async def _queue_stops(api: Service, many: Dataset) -> tuple[list[int], list[str]]:
    """Stop ten servers of each of the 100 accounts; (action ids, the token of each)."""
    per_account = -(-LONG_POLLS // len(many.tokens))
    work = [
        (token, server_id)
        for token, ids in zip(many.tokens, many.server_ids, strict=True)
        for server_id in ids[:per_account]
    ][:LONG_POLLS]
    queue = iter(work)
    done: list[tuple[int, str]] = []

    async def stop_some(client: Connection) -> None:
        for token, server_id in queue:
            path = f"/api/v1/servers/{server_id}/stop/"
            response = (await client.post(path, None, bearer(token))).expect(200)
            done.append((int(response.json()["action"]["id"]), token))

    connections = [Connection("127.0.0.1", api.port) for _ in range(QUEUE_CONNECTIONS)]
    try:
        await asyncio.gather(*(stop_some(c) for c in connections))
    finally:
        for connection in connections:
            await connection.close()
    if len(done) != len(work):
        raise BenchError(f"longpoll: queued {len(done)} stops of {len(work)}")
    return [a for a, _ in done], [t for _, t in done]


async def _long_poll(client: Connection, action_id: int, token: str) -> float:
    """Wait for the action; the client's wall clock when the answer said it had finished."""
    path = f"/api/v1/actions/{action_id}/?wait={WAIT_SECONDS}"
    while True:
        response = (await client.request("GET", path, None, bearer(token))).expect(200)
        answered = time.time()
        if response.json()["status"] not in ("pending", "running"):
            return answered


def raise_open_files(needed: int = 2 * LONG_POLLS + 100) -> None:
    """The client holds one socket per long-poll, and so does the server (a child)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise BenchError(f"longpoll needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
