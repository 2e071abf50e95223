"""Wakes long-polling requests when an action finishes, without holding database connections.

Within one process the worker calls ``notify`` directly. Across processes on PostgreSQL,
finishing an action sends ``NOTIFY vpsorg_actions, '<id>'`` in the finishing transaction,
and every API process keeps one ``LISTEN`` connection that forwards those ids here.
Waiters also re-check the database every ``recheck_seconds``, so a lost notification
costs latency, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

CHANNEL = "vpsorg_actions"


class ActionNotifier:
    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None

    def notify(self, action_id: int) -> None:
        for event in self._waiters.get(action_id, ()):
            event.set()

    async def wait(self, action_id: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a notification about ``action_id``."""
        event = asyncio.Event()
        self._waiters.setdefault(action_id, set()).add(event)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(action_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[action_id]

    def listen_postgres(self, dsn: str) -> None:
        """Forward PostgreSQL notifications from other processes (API process only)."""
        self._listener = asyncio.create_task(self._listen(dsn), name="action-listener")

    async def _listen(self, dsn: str) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    async for message in conn.notifies():
                        with contextlib.suppress(ValueError):
                            self.notify(int(message.payload))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("action listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
