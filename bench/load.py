"""The load generator: C workers in a closed loop, each on its own keep-alive connection.

It runs in the benchmark's process, never in a server's, so the client does not compete with
the server for an event loop (only, on a small machine, for the cores).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from bench.cpu import CpuMeter
from bench.http import Connection, ProtocolError, Response

MAX_FAILURES = 100
"""A scenario stops early after this many failures: the numbers would mean nothing."""
CLIENT_ERRORS = (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError, ValueError)


@dataclass
class Recorder:
    """Latencies (seconds) of successful operations, and failures, by result row."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    first_failure: dict[str, str] = field(default_factory=dict)

    def success(self, row: str, seconds: float) -> None:
        self.latencies.setdefault(row, []).append(seconds)

    def failure(self, row: str, why: str) -> None:
        self.failures[row] = self.failures.get(row, 0) + 1
        self.first_failure.setdefault(row, why)

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())

    def expect(self, row: str, response: Response, status: int, started: float) -> bool:
        """Record the request that began at ``started`` under ``row`` if it got ``status``."""
        elapsed = time.perf_counter() - started
        if response.status_code == status:
            self.success(row, elapsed)
            return True
        self.failure(row, describe(response, f"expected {status}"))
        return False


def describe(response: Response, expected: str) -> str:
    return (
        f"{response.method} {response.path} -> {response.status_code} ({expected}): "
        f"{response.text[:300]}"
    )


Operation = Callable[[Connection, int, int, Recorder], Awaitable[None]]
"""One iteration of a worker: (connection, worker index, iteration index, recorder)."""


@dataclass(frozen=True)
class Budget:
    operations: int
    seconds: float


@dataclass(frozen=True)
class Measurement:
    recorder: Recorder
    operations: int
    seconds: float
    server_cpu_seconds: float | None
    client_cpu_seconds: float
    machine_busy: float | None
    """The whole machine's CPU use meanwhile, from 0 to 1 (all cores busy)."""


class _Gate:
    """Hands out operations until the budget (count or time) is spent or failures pile up."""

    def __init__(self, budget: Budget, recorder: Recorder) -> None:
        self.left = budget.operations
        self.deadline = time.perf_counter() + budget.seconds
        self.recorder = recorder
        self.taken = 0

    def take(self) -> bool:
        if self.left <= 0 or time.perf_counter() >= self.deadline:
            return False
        if self.recorder.failure_count >= MAX_FAILURES:
            return False
        self.left -= 1
        self.taken += 1
        return True


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    headers: dict[str, str]
    pid: int
    """The server's process, whose CPU time is measured."""


async def drive(
    operation: Operation,
    target: Target,
    *,
    workers: int,
    budget: Budget,
    warmup: int,
    failure_row: str,
) -> Measurement:
    """Run ``warmup`` unrecorded iterations per worker, then measure until the budget is spent."""
    async with AsyncExitStack() as stack:
        connections = [
            await stack.enter_async_context(Connection(target.host, target.port, target.headers))
            for _ in range(workers)
        ]
        warmup_recorder = Recorder()
        warmup_gate = _Gate(Budget(warmup * workers, float("inf")), warmup_recorder)
        await asyncio.gather(
            *(
                _work(operation, conn, n, 0, warmup_gate, warmup_recorder, failure_row, warmup)
                for n, conn in enumerate(connections)
            )
        )
        recorder = Recorder()
        gate = _Gate(budget, recorder)
        cpu = CpuMeter(target.pid)
        cpu.start()
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _work(operation, conn, n, warmup, gate, recorder, failure_row)
                for n, conn in enumerate(connections)
            )
        )
        seconds = time.perf_counter() - started
        cpu.stop()
        return Measurement(recorder, gate.taken, seconds, cpu.server, cpu.client, cpu.machine_busy)


async def _work(
    operation: Operation,
    connection: Connection,
    worker: int,
    first_iteration: int,
    gate: _Gate,
    recorder: Recorder,
    failure_row: str,
    limit: int | None = None,
) -> None:
    iteration = first_iteration
    while (limit is None or iteration - first_iteration < limit) and gate.take():
        try:
            await operation(connection, worker, iteration, recorder)
        except (*CLIENT_ERRORS, KeyError) as exc:  # KeyError: a body without an expected field
            recorder.failure(failure_row, f"{type(exc).__name__}: {exc}")
        iteration += 1
