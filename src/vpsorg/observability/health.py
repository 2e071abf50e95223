"""Readiness: can this process serve its purpose right now?

``/readyz`` asks four things, each answered ``ok`` or with what is wrong:

* ``database``: a ``SELECT 1`` answers within ``READY_TIMEOUT`` (a stopped database or an
  exhausted pool is a 503 after two seconds, never a hung probe);
* ``migrations``: the database is at the revision this code was written for;
* ``driver``: the hypervisor driver's start-up probe succeeded;
* ``worker`` (only with an embedded worker): its claim loops run and beat recently.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING

from vpsorg import migrate
from vpsorg.db import transaction
from vpsorg.observability import repository

if TYPE_CHECKING:
    from vpsorg.actions.worker import Worker
    from vpsorg.runtime import Runtime

READY_TIMEOUT = 2.0
"""Seconds the database checks may take: probes of load balancers time out in a few."""


@dataclass(frozen=True)
class Check:
    name: str
    problem: str | None = None  # None: fine

    @property
    def ok(self) -> bool:
        return self.problem is None


async def readiness(runtime: Runtime) -> list[Check]:
    checks = [*await _database(runtime), _driver(runtime)]
    if runtime.worker is not None:
        checks.append(_worker(runtime.worker, _worker_max_silence(runtime)))
    return checks


async def _database(runtime: Runtime) -> list[Check]:
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with transaction(runtime.read_sessions) as session:
                await repository.ping(session)
                revisions = await migrate.schema_revisions(await session.connection())
    except TimeoutError:
        return [Check("database", f"no answer within {READY_TIMEOUT:g} s")]
    except Exception as exc:
        return [Check("database", f"unreachable: {_first_line(exc)}")]
    heads = migrate.head_revisions()
    if revisions != heads:
        found = ", ".join(sorted(revisions)) or "none"
        wanted = ", ".join(sorted(heads))
        problem = f"database at revision {found}, code at {wanted}: run `vpsorg db upgrade`"
        return [Check("database"), Check("migrations", problem)]
    return [Check("database"), Check("migrations")]


def _driver(runtime: Runtime) -> Check:
    return Check("driver", runtime.driver_problem)


def _worker_max_silence(runtime: Runtime) -> float:
    """A busy loop beats when its lease is renewed (every third of it), an idle one at
    every poll: silence longer than both means the loops are stuck."""
    settings = runtime.settings
    return max(settings.action_lease_seconds, 3 * settings.worker_poll_interval)


def _worker(worker: Worker, max_silence: float) -> Check:
    if not worker.running:
        return Check("worker", "the embedded worker is not running")
    silence = monotonic() - worker.last_beat
    if silence > max_silence:
        return Check("worker", f"no heartbeat for {silence:.0f} s (limit {max_silence:g} s)")
    return Check("worker")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
