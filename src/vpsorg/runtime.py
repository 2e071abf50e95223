"""The long-lived parts of a vpsorg process: database, driver and (optionally) a worker."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vpsorg.actions.notifier import ActionNotifier
from vpsorg.actions.worker import Worker
from vpsorg.auth.models import ApiToken
from vpsorg.auth.tokens import LAST_USED_EVERY, due_for_last_used, record_use
from vpsorg.clock import utcnow
from vpsorg.config import Settings
from vpsorg.db import create_engines, session_factory, transaction
from vpsorg.drivers.base import Driver
from vpsorg.drivers.registry import create_driver

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine
        self.read_engine: AsyncEngine
        self.engine, self.read_engine = create_engines(settings.database_url)
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(self.engine)
        self.read_sessions: async_sessionmaker[AsyncSession] = session_factory(
            self.read_engine, read_only=True
        )
        """For transactions that only read: they never wait for SQLite's write lock."""
        self.driver: Driver = create_driver(settings)
        self.worker: Worker | None = None
        self.driver_problem: str | None = "not probed yet"
        """Why the driver's last probe failed; None once it succeeded (see /readyz)."""
        self.notifier = ActionNotifier(self.read_sessions)
        self._token_uses: dict[int, datetime] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def probe_driver(self) -> str:
        """Probe the driver once; a broken driver is reported here, not at the first action."""
        try:
            description = await self.driver.probe()
        except Exception as exc:
            self.driver_problem = f"probe failed: {exc or type(exc).__name__}"
            raise
        self.driver_problem = None
        log.info("driver %s ready: %s", self.driver.name, description)
        return description

    def start_worker(self, concurrency: int | None = None) -> Worker:
        self.worker = Worker(self, concurrency)
        self.worker.start()
        return self.worker

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def note_token_use(self, token: ApiToken) -> None:
        """Record a token's use at most once a minute, in a transaction of its own, so the
        request's (read-only) transaction never writes and never waits for it."""
        now = utcnow()
        noted = self._token_uses.get(token.id)
        if not due_for_last_used(token, now) or (noted and now - noted < LAST_USED_EVERY):
            return
        self._token_uses[token.id] = now
        task = asyncio.create_task(self._record_token_use(token.id, now))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _record_token_use(self, token_id: int, now: datetime) -> None:
        try:
            async with transaction(self.sessions) as session:
                await record_use(session, token_id, now)
        except Exception:
            log.warning("could not record the use of token %d", token_id, exc_info=True)

    def listen_for_actions(self) -> None:
        """Let long-polls hear about actions finished by other processes (PostgreSQL)."""
        if not self.settings.is_sqlite:
            url = self.engine.url
            dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
            self.notifier.listen_postgres(dsn, driver=url.get_driver_name())

    async def background_done(self) -> None:
        """Wait for the small writes started beside requests (a token's last use)."""
        await asyncio.gather(*self._background, return_exceptions=True)

    async def close(self, grace: float = 10.0) -> None:
        await self.background_done()
        if self.worker is not None:
            await self.worker.stop(grace)
        await self.notifier.close()
        await self.driver.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
