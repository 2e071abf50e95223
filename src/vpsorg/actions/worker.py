"""The worker: claims actions, runs them through the driver, records the outcome.

``vpsorg serve`` runs one inside the API process; ``vpsorg worker`` runs one alone. Any
number of workers may share a database (see ``queue`` for the claim and lease rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update

from vpsorg import logs
from vpsorg.actions import queue, repository
from vpsorg.actions.identity import is_dead_worker, new_worker_id
from vpsorg.actions.outcomes import OutcomeWriter
from vpsorg.backups import scheduler as backup_scheduler
from vpsorg.billing import metering
from vpsorg.clock import utcnow
from vpsorg.db import transaction
from vpsorg.drivers.base import DriverError, RetriableDriverError
from vpsorg.hosts.models import Host
from vpsorg.hosts.reconciler import Reconciler
from vpsorg.idempotency import service as idempotency
from vpsorg.observability import metrics
from vpsorg.servers import lifecycle
from vpsorg.servers.models import Server, ServerStatus, machine_name

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0
IDEMPOTENCY_PURGE_INTERVAL = 600.0  # keys live 24 h; a few minutes more do no harm
DEAD_WORKER_INTERVAL = 5.0  # how often a worker looks for dead workers of its host


class Worker:
    def __init__(self, runtime: Runtime, concurrency: int | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.concurrency = concurrency or self.settings.worker_concurrency
        self.id = new_worker_id()
        self.wakeup = asyncio.Event()
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.last_beat = time.monotonic()
        """When a claim loop last polled or a running action's lease was renewed (/readyz)."""
        self.reconciler = Reconciler(runtime.sessions, runtime.driver)
        self.outcomes = OutcomeWriter(runtime.sessions, self.id)

    # -- running -----------------------------------------------------------------------

    def periodic_jobs(self) -> list[tuple[str, float, Callable[[], Awaitable[object]]]]:
        """(name, interval in seconds, job): housekeeping every worker runs on a timer.

        Each job must be safe when several workers run it at once (they claim their rows).
        """
        return [
            ("usage-sampler", self.settings.usage_interval, self.sample_usage),
            ("metering", self.settings.metering_interval, self.charge_due_hours),
            ("backups", self.settings.backup_schedule_interval, self.schedule_backups),
            ("reconciler", self.settings.reconcile_interval, self.reconciler.run),
            ("idempotency-purge", IDEMPOTENCY_PURGE_INTERVAL, self.purge_idempotency_keys),
            ("dead-workers", DEAD_WORKER_INTERVAL, self.take_back_from_dead_workers),
        ]

    async def take_back_from_dead_workers(self) -> int:
        """Make what dead workers of this host held claimable now, not when leases expire.

        Runs at start (a worker restarted after a kill -9 takes back its predecessor's
        actions at once) and every few seconds (a sibling process that died).
        """
        async with transaction(self.runtime.read_sessions) as session:
            holders = await queue.holders_on(session, socket.gethostname())
        taken = 0
        for holder in holders:
            if holder == self.id or not is_dead_worker(holder):
                continue
            async with transaction(self.runtime.sessions) as session:
                count = await queue.take_back(session, holder)
            if count:
                log.warning("took back %d actions of dead worker %s", count, holder)
            taken += count
        if taken:
            self.wake()
        return taken

    async def purge_idempotency_keys(self) -> int:
        return await idempotency.purge_expired(self.runtime.sessions)

    async def charge_due_hours(self) -> int:
        charged = await metering.charge_due_hours(self.runtime.sessions)
        if charged:
            self.wake()  # suspensions may have queued actions
        return charged

    async def schedule_backups(self) -> int:
        queued = await backup_scheduler.run(self.runtime.sessions, self.settings)
        if queued:
            self.wake()
        return queued

    def start(self) -> None:
        """Start the claim loop and the periodic jobs as tasks of the running loop."""
        log.info("worker %s starting with concurrency %d", self.id, self.concurrency)
        self._tasks = [asyncio.create_task(self._claim_loop(), name="worker-claims")]
        for name, interval, job in self.periodic_jobs():
            self._tasks.append(asyncio.create_task(self._every(interval, name, job), name=name))

    def wake(self) -> None:
        self.wakeup.set()

    @property
    def running(self) -> bool:
        """Started, not stopping, and every task still alive (none crashed)."""
        return bool(self._tasks) and not self._stopping and not any(t.done() for t in self._tasks)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let running actions finish for ``grace`` seconds, then release them."""
        self._stopping = True
        self._stop_event.set()
        self.wakeup.set()
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(self._tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.outcomes.drain()
        log.info("worker %s stopped", self.id)

    async def _claim_loop(self) -> None:
        """Keep up to ``concurrency`` actions running: claim as many as there are free slots
        in one claim, run each in a task of its own, and claim again when one finishes (it
        wakes this loop) or when woken (a new action), or after the poll interval."""
        running: set[asyncio.Task[None]] = set()
        found = False
        try:
            while not self._stopping:
                self.last_beat = time.monotonic()
                free = self.concurrency - len(running)
                if free > 0:
                    try:
                        # An idle loop polls: it looks before it claims. A busy one claims.
                        started = await self._claim_and_start(free, running, look_first=not found)
                    except Exception:
                        log.exception("worker %s: claim loop error", self.id)
                        started = 0
                    found = started > 0
                    if started == free:
                        continue  # every slot is busy: the next finish wakes this loop
                    if found:
                        continue  # there may be more than it asked for the first time
                if self._stopping:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), self.settings.worker_poll_interval)
                self.wakeup.clear()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        finally:
            for task in running:  # stop() ran out of grace: each releases its action
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _claim_and_start(
        self, limit: int, running: set[asyncio.Task[None]], *, look_first: bool
    ) -> int:
        jobs = await self._claim(limit, look_first=look_first)
        for job, attempts in jobs:
            task = asyncio.create_task(self._run_in_context(job, attempts))
            running.add(task)
            task.add_done_callback(self._slot_freed(running))
        return len(jobs)

    def _slot_freed(self, running: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            self.wakeup.set()

        return done

    async def run_once(self, *, look_first: bool = False, limit: int = 1) -> bool:
        """Claim up to ``limit`` actions and run them. False when there was nothing to do.

        With ``look_first``, a read-only transaction checks that there is anything to
        claim before the claim's write transaction: on SQLite an idle poll then never
        takes the database's write lock, which every API write waits for.
        """
        jobs = await self._claim(limit, look_first=look_first)
        await asyncio.gather(*(self._run_in_context(job, attempts) for job, attempts in jobs))
        return bool(jobs)

    async def _claim(self, limit: int, *, look_first: bool) -> list[tuple[lifecycle.Job, int]]:
        """Claim up to ``limit`` actions and read what running them needs, in one transaction."""
        if look_first and not await self._anything_to_claim():
            return []
        async with transaction(self.runtime.sessions) as session:
            actions = await queue.claim_many(
                session, self.id, self.settings.action_lease_seconds, limit
            )
            if not actions:
                return []
            loaded = await repository.load_subjects(session, actions)
            jobs = [
                (await lifecycle.prepare(session, action), action.attempts) for action in actions
            ]
            del loaded
        return jobs

    async def _run_in_context(self, job: lifecycle.Job, attempts: int) -> None:
        host = metrics.host_label(job.host_uri)
        context = logs.ActionContext(job.action_id, job.server_id, job.command, attempts, host)
        with logs.action_context(context):
            try:
                await self._run(job, attempts)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Its lease runs out and another claim retries it; the loop goes on.
                log.exception("action %d: could not be run", job.action_id)

    async def _run(self, job: lifecycle.Job, attempts: int) -> None:
        started = time.perf_counter()
        if attempts > self.settings.action_max_attempts:
            gave_up = f"Gave up after {attempts - 1} attempts."
            outcome = await self._finish(job, None, ("too_many_attempts", gave_up))
        else:
            outcome = await self._execute(job, attempts)
        metrics.action_finished(job.command, outcome, time.perf_counter() - started)

    async def _anything_to_claim(self) -> bool:
        async with transaction(self.runtime.read_sessions) as session:
            return await queue.any_runnable(session)

    async def _execute(self, job: lifecycle.Job, attempts: int) -> str:
        """Run the job; returns the outcome (see ``_finish``, and ``retry``)."""
        log.info("action %d: %s %s (attempt %d)", job.action_id, job.command, job.machine, attempts)
        renewer = asyncio.create_task(self._renew_lease(job.action_id))
        usage: lifecycle.Outcome = None
        error: tuple[str, str] | None = None
        try:
            with metrics.driver_call(job.command, job.host_uri):
                usage = await lifecycle.perform(
                    self.runtime.driver, job, self.settings.stop_timeout
                )
        except asyncio.CancelledError:
            await self._release(job, delay=0.0, count_attempt=False)
            raise
        except RetriableDriverError as exc:
            backoff = self.settings.action_retry_base_seconds * 2 ** (attempts - 1)
            delay = min(MAX_BACKOFF_SECONDS, max(exc.retry_after, backoff))
            log.warning(
                "action %d: retriable failure (%s); retry in %.1fs", job.action_id, exc, delay
            )
            await self._release(job, delay=delay)
            return "retry"
        except Exception as exc:
            log.warning("action %d: failed: %s", job.action_id, exc)
            error = (exc.code if isinstance(exc, DriverError) else "internal_error", str(exc))
        finally:
            renewer.cancel()
        return await self._finish(job, usage, error)

    async def _finish(
        self, job: lifecycle.Job, usage: lifecycle.Outcome, error: tuple[str, str] | None
    ) -> str:
        """Record the outcome, unless another worker has taken the action over meanwhile.

        Returns ``success``, ``error``, or ``lease_lost`` (the other worker records it).
        """
        _code, message = error or (None, None)
        if not await self.outcomes.write(job, usage, error):
            log.warning("action %d: lease lost; outcome left to its new owner", job.action_id)
            return "lease_lost"
        self.runtime.notifier.notify(job.action_id)
        log.info("action %d: %s %s %s", job.action_id, job.command, job.machine,
                 f"failed: {message}" if error else "done")  # fmt: skip
        return "error" if error else "success"

    async def _release(self, job: lifecycle.Job, delay: float, count_attempt: bool = True) -> None:
        async with transaction(self.runtime.sessions) as session:
            await queue.release(
                session, job.action_id, self.id, delay=delay, count_attempt=count_attempt
            )

    async def _renew_lease(self, action_id: int) -> None:
        lease = self.settings.action_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            self.last_beat = time.monotonic()
            try:
                async with transaction(self.runtime.sessions) as session:
                    if not await queue.renew(session, action_id, self.id, lease):
                        return
            except Exception:
                log.exception("action %d: lease renewal failed", action_id)

    # -- usage sampling ----------------------------------------------------------------

    async def _every(
        self, interval: float, name: str, job: Callable[[], Awaitable[object]]
    ) -> None:
        while not self._stopping:
            try:
                await job()
            except Exception:
                log.exception("periodic job %s failed", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), interval)

    async def sample_usage(self, limit: int = 100) -> int:
        """Refresh resource usage of servers whose sample is older than the interval."""
        cutoff = utcnow() - timedelta(seconds=self.settings.usage_interval)
        async with transaction(self.runtime.sessions) as session:
            rows = await session.execute(
                select(Server.id, Host.uri)
                .outerjoin(Host, Server.host_id == Host.id)
                .where(
                    Server.status.in_([ServerStatus.ACTIVE, ServerStatus.STOPPED]),
                    Server.provisioned_at.is_not(None),
                    or_(Server.usage_sampled_at.is_(None), Server.usage_sampled_at < cutoff),
                )
                .order_by(Server.id)
                .limit(limit)
            )
            targets = [(row.id, row.uri) for row in rows]
        sampled = 0
        for server_id, host_uri in targets:
            with metrics.driver_call("usage", host_uri):
                usage = await self.runtime.driver.usage(machine_name(server_id), host_uri=host_uri)
            if usage is None:
                continue
            async with transaction(self.runtime.sessions) as session:
                await session.execute(
                    update(Server).where(Server.id == server_id)
                    .values(**lifecycle.usage_values(usage))
                )  # fmt: skip
            sampled += 1
        return sampled
