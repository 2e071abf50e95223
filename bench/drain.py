"""``drain``: creates accepted by one API process, then drained by one worker, then by two.

It runs after every other scenario, on the same database, and needs processes of its own: the
main ``vpsorg serve`` is stopped (its embedded worker would take the actions) and replaced by
``vpsorg serve --no-worker``. Then, twice (one worker process, then two):

0. once: ``WARMUP_CREATES`` creates warm the new API process up, unrecorded;
1. start the worker process(es) (``vpsorg worker --concurrency 8``), wait until they idle,
   and freeze them (SIGSTOP), so that their start-up is not counted and the queue fills first;
2. queue ``DRAIN_ACTIONS`` creates through the API, from the 100 accounts in turn (the first
   time, this is the ``create-100`` row: creates accepted per second by the API process alone);
3. thaw the workers (SIGCONT) and wait until every action has finished.

A drain row's rate is its actions over the time from the thaw to the last ``finished_at``
(read from the database, to the microsecond); its CPU is the worker processes' CPU from the
thaw to the end, per action. With ``VPSORG_SIMULATOR_DELAY=0`` the simulator waits for
nothing: what is left is the worker's own work (claims, transitions, billing, addresses).

On SQLite a worker frozen while it held the write lock would stall the creates behind it (for
the busy timeout, 30 s); it is frozen only once idle, between two polls a second apart, so
this is unlikely, and it shows as failed creates if it happens.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench.big import ManyCreates
from bench.cpu import machine_ticks, process_cpu_seconds
from bench.database import action_outcomes
from bench.errors import BenchError
from bench.load import Budget, Measurement, Target, drive
from bench.options import Options
from bench.processes import Service, run_cli, start_vpsorg, start_worker
from bench.report import Row, rows_of

DRAIN_ACTIONS = 400
WARMUP_CREATES = 50
"""Creates sent to the new API process before any is measured, as every other scenario warms
up: its first requests compile statements and fill caches (in our runs the first 400 cost
1.2x the CPU of the next). The workers, started next, run their actions before they idle."""
WORKER_CONCURRENCY = 8  # as the issue measured
IDLE_CPU_SECONDS = 0.02
"""A worker that used less CPU than this in IDLE_WINDOW is waiting for work."""
IDLE_WINDOW = 0.5
IDLE_TIMEOUT = 300.0  # a worker's first sweeps over 20,000 servers take a while
QUIET_JOBS = {
    f"VPSORG_{name}_INTERVAL": "3600"
    for name in ("USAGE", "RECONCILE", "METERING", "BACKUP_SCHEDULE")
}
"""For the workers started here: their periodic sweeps over every server run once at start
(before the freeze) and not again during the measuring, so the CPU counted is the actions'.
What the sweeps cost is what the idle line of ``vpsorg serve`` shows."""
DRAIN_TIMEOUT = 600.0
POLL_SECONDS = 0.25


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def replace_api(
    options: Options, vpsorg: Service, env: dict[str, str], workdir: Path, stack: ExitStack
) -> Service:
    """Stop ``vpsorg serve`` (its embedded worker would take the actions) and start
    ``vpsorg serve --no-worker`` on the same database in its place."""
    vpsorg.stop()
    api = start_vpsorg(env, workdir, 0 if options.pin else None, worker=False)
    stack.callback(api.stop)
    api.wait_until_ready()
    return api


async def measure_drain(
    options: Options,
    api: Service,
    tokens: list[str],
    env: dict[str, str],
    database_url: str,
    workdir: Path,
    stack: ExitStack,
) -> list[Row]:
    rows: list[Row] = []
    progress(f"drain: warming the new API process up with {WARMUP_CREATES} creates")
    await _queue(ManyCreates(tokens, "warm-up"), options, api, WARMUP_CREATES)
    for count in (1, 2):
        cores = os.cpu_count() or 1
        workers = [
            start_worker(
                {**env, **QUIET_JOBS},
                workdir,
                f"vpsorg-worker-{count}-{n}",
                WORKER_CONCURRENCY,
                n % cores if options.pin else None,
            )
            for n in range(count)
        ]
        for worker in workers:
            stack.callback(stop_worker, worker)
        await wait_idle(workers)
        for worker in workers:
            os.kill(worker.pid, signal.SIGSTOP)
        label = "worker" if count == 1 else "workers"
        progress(f"drain: queueing {DRAIN_ACTIONS} creates, {count} {label} frozen")
        creates = ManyCreates(tokens)
        measurement = await _queue(creates, options, api)
        if count == 1:
            rows += rows_of("drain", creates.rows, options.concurrency, measurement)
        progress(f"drain: {len(creates.action_ids)} actions, {count} {label} at work")
        rows.append(await _drain(workers, creates.action_ids, database_url))
        for worker in workers:
            stop_worker(worker)
    rows += await measure_empty_location(options, api, tokens, env, workdir)
    return rows


EMPTY_LOCATION = "eu-central"
EMPTY_RANGE = "10.2.0.0/16"
"""A location without servers (the datasets fill us-east and us-west), and a range for the
400 creates (its seeded /25 holds 125)."""


async def measure_empty_location(
    options: Options, api: Service, tokens: list[str], env: dict[str, str], workdir: Path
) -> list[Row]:
    """``create-100`` again, into a location without servers, after the drains (no worker
    runs the actions it queues): its median against ``create-100``'s, whose location holds
    10,000 servers, is how much a create's cost grows with its location. Then once more in
    that location with an ``Idempotency-Key`` on each create: what the keys cost."""
    run_cli(env, workdir, "locations", "add-range", EMPTY_LOCATION, EMPTY_RANGE)
    progress(f"drain: queueing {DRAIN_ACTIONS} creates in {EMPTY_LOCATION}, no servers there")
    creates = ManyCreates(tokens, "create-100, empty location", EMPTY_LOCATION)
    rows = rows_of("drain", creates.rows, options.concurrency, await _queue(creates, options, api))
    progress(f"drain: queueing {DRAIN_ACTIONS} creates with an Idempotency-Key each")
    keyed = ManyCreates(tokens, "create-100, idempotency keys", EMPTY_LOCATION, keyed=True)
    return rows + rows_of(
        "drain", keyed.rows, options.concurrency, await _queue(keyed, options, api)
    )


async def _queue(
    creates: ManyCreates, options: Options, api: Service, count: int = DRAIN_ACTIONS
) -> Measurement:
    target = Target("127.0.0.1", api.port, {"Content-Type": "application/json"}, api.pid)
    return await drive(
        creates.once,
        target,
        workers=options.concurrency,
        budget=Budget(count, float("inf")),
        warmup=0,
        failure_row=creates.rows[0],
    )


async def _drain(workers: list[Service], action_ids: list[int], database_url: str) -> Row:
    busy_start = machine_ticks()
    cpu_start = sum(_cpu(w) for w in workers)
    thawed = time.time()
    for worker in workers:
        os.kill(worker.pid, signal.SIGCONT)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        await asyncio.sleep(POLL_SECONDS)
        outcomes = await asyncio.to_thread(action_outcomes, database_url, action_ids)
        if all(at is not None for _, at in outcomes.values()) and len(outcomes) == len(action_ids):
            break
        for worker in workers:
            worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"the workers did not finish {len(action_ids)} actions in time")
    cpu_seconds = sum(_cpu(w) for w in workers) - cpu_start
    finished = [at for _, at in outcomes.values() if at is not None]
    failed = sum(1 for status, _ in outcomes.values() if status != "success")
    seconds = max(finished) - thawed
    busy_end = machine_ticks()
    busy = None
    if busy_start and busy_end and busy_end[1] > busy_start[1]:
        busy = (busy_end[0] - busy_start[0]) / (busy_end[1] - busy_start[1]) * 100
    count = len(workers)
    return Row(
        row=f"drain, {count} worker{'s' if count > 1 else ''}",
        scenario="drain",
        workers=count * WORKER_CONCURRENCY,
        requests=len(action_ids),
        failures=failed,
        median_ms=None,
        p95_ms=None,
        per_second=(len(action_ids) - failed) / seconds if seconds > 0 else 0.0,
        server_cpu_ms=cpu_seconds / len(action_ids) * 1000 if action_ids else None,
        machine_busy_percent=busy,
    )


async def wait_idle(workers: list[Service]) -> None:
    """Until each worker has started and waits for work (its CPU stands still)."""
    deadline = time.monotonic() + IDLE_TIMEOUT
    for worker in workers:
        before = _cpu(worker)
        while True:
            await asyncio.sleep(IDLE_WINDOW)
            worker.check_alive()
            now = _cpu(worker)
            if now - before < IDLE_CPU_SECONDS:
                break
            before = now
            if time.monotonic() > deadline:
                raise BenchError(f"{worker.name} never went idle; log:\n{worker.log_tail()}")


def _cpu(worker: Service) -> float:
    return process_cpu_seconds(worker.pid) or 0.0


def stop_worker(worker: Service) -> None:
    if worker.running:
        os.kill(worker.pid, signal.SIGCONT)
    worker.stop()
