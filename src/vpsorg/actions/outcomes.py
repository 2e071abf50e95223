"""Records the outcomes of a worker's finished actions, many in one transaction.

When dozens of actions finish at once (a batch of creates, a burst of long actions), one
transaction per outcome makes each wait behind the others for a connection and a commit, and
the long-polls on them wait too. The writer takes every outcome waiting when it starts a
transaction and writes them together: the successes in one guarded UPDATE of their action
rows, then each server's transition; the failures one by one, with their refunds. If that
transaction fails (a deadlock with another transaction, one outcome's bad write), it writes
them again one per transaction, so one outcome never costs the others theirs.

Each write stays guarded as before: an outcome is recorded, and its server and billing
touched, only for an action the worker still holds, in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vpsorg.actions import queue
from vpsorg.db import transaction
from vpsorg.servers import lifecycle

log = logging.getLogger(__name__)

MAX_BATCH = 10
"""Outcomes per transaction: enough to share its round trips, few enough that the first
long-polls of a burst of finishes hear of theirs before the whole burst is written."""
MAX_WRITERS = 4
"""Transactions under way at once: a second starts only when a full batch waits behind the
first (a burst of finishes), so a steady trickle still shares one."""


@dataclass
class _Outcome:
    job: lifecycle.Job
    result: lifecycle.Outcome
    error: tuple[str, str] | None
    held: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class OutcomeWriter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], worker_id: str) -> None:
        self._sessions = sessions
        self._worker_id = worker_id
        self._waiting: list[_Outcome] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def write(
        self, job: lifecycle.Job, result: lifecycle.Outcome, error: tuple[str, str] | None
    ) -> bool:
        """Record one action's outcome (``error``: its code and message). False when the
        worker no longer holds the action: then nothing was written."""
        outcome = _Outcome(job, result, error)
        self._waiting.append(outcome)
        backlog = len(self._waiting) >= MAX_BATCH and len(self._writers) < MAX_WRITERS
        if not self._writers or backlog:
            writer = asyncio.create_task(self._write_waiting(), name="action-outcomes")
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        # Shielded: a caller cancelled meanwhile (shutdown) does not undo a write under way.
        return await asyncio.shield(outcome.held)

    async def drain(self) -> None:
        """Until every outcome handed over so far is written."""
        while self._writers:
            await asyncio.gather(*self._writers, return_exceptions=True)

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                held = await self._write(batch)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0], exc)
                    continue
                log.warning("%d outcomes failed together (%s); one at a time", len(batch), exc)
                for outcome in batch:
                    try:
                        _settle(outcome, outcome.job.action_id in await self._write([outcome]))
                    except Exception as one:
                        _settle(outcome, one)
                continue
            for outcome in batch:
                _settle(outcome, outcome.job.action_id in held)

    async def _write(self, batch: list[_Outcome]) -> set[int]:
        """Write ``batch`` in one transaction; the ids of the actions still held.

        The successes' servers are moved first and their actions marked finished last, just
        before the commit: ``finished_at`` is when the outcome became visible, give or take
        one statement, not when a batch began to be written (long-polls are measured from
        it). Should the worker have lost one of them meanwhile (its lease expired), the
        transaction is undone and the batch written again one outcome at a time, where each
        action is marked first and its server moved only if it was still held.
        """
        successes = [o for o in batch if o.error is None]
        async with transaction(self._sessions) as session:
            held: set[int] = set()
            for outcome in batch:
                job = outcome.job
                if outcome.error is None:
                    if len(batch) == 1:
                        held = await queue.finish_many(session, [job.action_id], self._worker_id)
                        if job.action_id in held:
                            await lifecycle.succeeded(session, job, outcome.result)
                    else:
                        await lifecycle.succeeded(session, job, outcome.result)
                    continue
                code, message = outcome.error
                if await queue.finish(
                    session, job.action_id, self._worker_id, error_code=code, error=message
                ):
                    held.add(job.action_id)
                    await lifecycle.failed(session, job)
            if len(batch) > 1 and successes:
                ids = [o.job.action_id for o in successes]
                finished = await queue.finish_many(session, ids, self._worker_id)
                if finished != set(ids):
                    raise LostLease(f"actions {sorted(set(ids) - finished)} are no longer held")
                held |= finished
        return held


class LostLease(RuntimeError):
    """A batch's action that the worker no longer holds: write the batch one at a time."""


def _settle(outcome: _Outcome, result: bool | BaseException) -> None:
    if outcome.held.done():
        return
    if isinstance(result, BaseException):
        outcome.held.set_exception(result)
    else:
        outcome.held.set_result(result)
