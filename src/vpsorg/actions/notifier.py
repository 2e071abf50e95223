"""Wakes long-polling requests when their action finishes, without holding database connections.

One notifier per process, three ways to learn that an action finished:

* within one process the worker calls ``notify`` directly;
* across processes on PostgreSQL, finishing an action sends ``NOTIFY vpsorg_actions`` with
  the action's row as JSON (its id alone if the row would not fit) when its transaction
  commits, and the notifier keeps one ``LISTEN`` connection (asyncpg's ``add_listener``, or
  psycopg's ``notifies()`` for a ``postgresql+psycopg://`` URL): a row wakes its waiters at
  once, an id after one read for every action notified meanwhile;
* for everything else (SQLite across processes, a notification lost while the ``LISTEN``
  connection was down) one task re-checks every waiting action in a single batched query:
  every ``RECHECK_SECONDS`` while listening, every ``POLL_SECONDS`` when not.

So 1,000 waiters cost one query per interval, not 1,000, and a lost notification costs
latency, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime

from sqlalchemy import DateTime, inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vpsorg.actions import repository
from vpsorg.actions.models import Action

log = logging.getLogger(__name__)

CHANNEL = "vpsorg_actions"
RECHECK_SECONDS = 1.0
"""The batched re-check's interval while notifications arrive (a safety net)."""
POLL_SECONDS = 0.1
"""The batched re-check's interval with no notifications to rely on (SQLite across
processes, or the ``LISTEN`` connection down): a finish is noticed within about this."""
RECONNECT_SECONDS = 1.0
PING_SECONDS = 30.0
"""How often an idle ``LISTEN`` connection is checked (a dead peer sends no close)."""


class Waiter:
    """One long-poll's registration: woken when its action may have finished, with the
    action's row when the notifier read it (one query for every waiter woken at once)."""

    __slots__ = ("_event", "action")

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.action: Action | None = None
        """The action as the notifier last read it; None: read it yourself."""

    def wake(self, action: Action | None = None) -> None:
        self.action = action
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds to be woken; True if woken (and ready to be again)."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True

    def take(self) -> Action | None:
        """The row delivered with the last wake, once."""
        action, self.action = self.action, None
        return action


class ActionNotifier:
    def __init__(self, sessions: async_sessionmaker[AsyncSession] | None = None) -> None:
        """``sessions`` (read-only ones) run the batched re-check; without, none runs."""
        self._sessions = sessions
        self._waiters: dict[int, set[Waiter]] = {}
        self._woken: set[int] = set()
        self._delivering: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._rechecker: asyncio.Task[None] | None = None
        self._recheck_now = asyncio.Event()
        self.listening = False
        """Whether a ``LISTEN`` connection is up (the re-check then runs less often)."""
        self.rechecks = 0
        """Batched re-checks run so far (for tests and curious operators)."""

    # -- waiting -----------------------------------------------------------------------

    def notify(self, action_id: int) -> None:
        """``action_id`` finished (or may have): wake its waiters, with its row read in one
        query for every action notified meanwhile."""
        if action_id not in self._waiters:
            return
        if self._sessions is None:
            self._wake(action_id, None)
            return
        self._woken.add(action_id)
        if self._delivering is None or self._delivering.done():
            self._delivering = asyncio.create_task(self._deliver(), name="action-deliver")

    def _wake(self, action_id: int, action: Action | None) -> None:
        for waiter in self._waiters.get(action_id, ()):
            waiter.wake(action)

    async def _deliver(self) -> None:
        assert self._sessions is not None
        await asyncio.sleep(0)  # let the notifications that arrived together gather
        while self._woken:
            ids = [i for i in self._woken if i in self._waiters]
            self._woken.clear()
            rows: dict[int, Action] = {}
            try:
                async with self._sessions() as session:
                    for start in range(0, len(ids), CHUNK):
                        chunk = ids[start : start + CHUNK]
                        rows.update((a.id, a) for a in await repository.get_many(session, chunk))
            except Exception as exc:
                log.warning("long-polls: could not read the woken actions (%s)", exc)
            for action_id in ids:
                self._wake(action_id, rows.get(action_id))

    @contextlib.contextmanager
    def watch(self, action_id: int) -> Iterator[Waiter]:
        """Register interest in ``action_id`` for the block. Register before reading the
        action, so a finish between the read and the wait still wakes the waiter."""
        waiter = Waiter()
        self._waiters.setdefault(action_id, set()).add(waiter)
        self._start_rechecker()
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(action_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[action_id]

    async def wait(self, action_id: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for news of ``action_id``; True if there was some."""
        with self.watch(action_id) as waiter:
            return await waiter.wait(timeout)

    @property
    def waiting(self) -> int:
        """How many actions someone is waiting for."""
        return len(self._waiters)

    # -- the batched re-check ----------------------------------------------------------

    def _start_rechecker(self) -> None:
        if self._sessions is None:
            return
        if self._rechecker is None or self._rechecker.done():
            self._rechecker = asyncio.create_task(self._recheck_loop(), name="action-recheck")

    async def _recheck_loop(self) -> None:
        while True:
            interval = RECHECK_SECONDS if self.listening else POLL_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recheck_now.wait(), interval)
            self._recheck_now.clear()
            if not self._waiters:
                continue
            try:
                await self.recheck()
            except Exception as exc:
                log.warning("long-poll re-check failed (%s); trying again", exc)

    async def recheck(self) -> int:
        """Wake the waiters of every waited-for action that has finished: one query (per
        chunk of ``CHUNK`` ids). Returns how many actions had finished."""
        assert self._sessions is not None
        ids = list(self._waiters)
        finished: list[Action] = []
        async with self._sessions() as session:
            for start in range(0, len(ids), CHUNK):
                finished += await repository.finished_among(session, ids[start : start + CHUNK])
        self.rechecks += 1
        for action in finished:
            self._wake(action.id, action)
        return len(finished)

    # -- PostgreSQL's LISTEN -----------------------------------------------------------

    def listen_postgres(self, dsn: str, driver: str = "asyncpg") -> None:
        """Forward PostgreSQL notifications from other processes (API process only).

        ``dsn`` is a libpq URL (``postgresql://...``); ``driver`` the one the engine uses
        (``asyncpg`` or ``psycopg``), so no other needs to be installed.
        """
        listen = self._listen_psycopg if driver == "psycopg" else self._listen_asyncpg
        self._listener = asyncio.create_task(
            self._keep_listening(listen, dsn), name="action-listener"
        )

    async def _keep_listening(self, listen: Callable[[str], Awaitable[None]], dsn: str) -> None:
        while True:
            try:
                await listen(dsn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("action listener lost its connection (%s); reconnecting", exc)
            finally:
                self.listening = False
            await asyncio.sleep(RECONNECT_SECONDS)

    def _listening(self) -> None:
        self.listening = True
        self._recheck_now.set()  # notifications sent while nobody listened are lost

    def _on_payload(self, payload: str) -> None:
        """A notification: the finished action's row (as JSON), or only its id."""
        action = action_of(payload)
        if action is not None:
            self._wake(action.id, action)
            return
        with contextlib.suppress(ValueError):
            self.notify(int(payload))

    async def _listen_asyncpg(self, dsn: str) -> None:
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(dsn)
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(
                CHANNEL, lambda _connection, _pid, _channel, payload: self._on_payload(payload)
            )
            self._listening()
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), PING_SECONDS)
                if lost.is_set():
                    raise ConnectionError("the LISTEN connection closed")
                await asyncio.wait_for(connection.fetchval("SELECT 1"), PING_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)

    async def _listen_psycopg(self, dsn: str) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
            await connection.execute(f"LISTEN {CHANNEL}")
            self._listening()
            async for message in connection.notifies():
                self._on_payload(message.payload)

    async def close(self) -> None:
        for task in (self._listener, self._rechecker, self._delivering):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._listener = self._rechecker = self._delivering = None


def action_of(payload: str) -> Action | None:
    """The action a notification carries as JSON (``queue._notification``), as a new
    object that is in no session; None for a payload that is only an id (or is not ours).

    The long-polls it wakes read it as they would a row: the account was checked by their
    first read, and an action never changes hands.
    """
    if not payload.startswith("{"):
        return None
    try:
        row = json.loads(payload)
        values = {
            key: _column_value(row[key], DATETIME_COLUMNS.get(key, False)) for key in ACTION_COLUMNS
        }
    except (ValueError, KeyError, TypeError):
        log.warning("long-polls: an action notification could not be read: %.200s", payload)
        return None
    return Action(**values)


ACTION_COLUMNS = tuple(attribute.key for attribute in inspect(Action).column_attrs)
DATETIME_COLUMNS = {
    attribute.key: isinstance(attribute.columns[0].type, DateTime)
    for attribute in inspect(Action).column_attrs
}


def _column_value(value: object, is_datetime: bool) -> object:
    if is_datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


CHUNK = 500
"""Ids per re-check query (SQLite allows 32,766 parameters; a smaller IN list plans well)."""
