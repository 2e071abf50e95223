"""The long-lived parts of a vpsorg process: database, driver and (optionally) a worker."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vpsorg.actions.notifier import ActionNotifier
from vpsorg.actions.worker import Worker
from vpsorg.config import Settings
from vpsorg.db import create_engines, session_factory
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
        self.notifier = ActionNotifier()

    async def probe_driver(self) -> str:
        """Probe the driver once; a broken driver is reported here, not at the first action."""
        description = await self.driver.probe()
        log.info("driver %s ready: %s", self.driver.name, description)
        return description

    def start_worker(self, concurrency: int | None = None) -> Worker:
        self.worker = Worker(self, concurrency)
        self.worker.start()
        return self.worker

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def listen_for_actions(self) -> None:
        """Let long-polls hear about actions finished by other processes (PostgreSQL)."""
        if not self.settings.is_sqlite:
            dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self.notifier.listen_postgres(dsn)

    async def close(self, grace: float = 10.0) -> None:
        if self.worker is not None:
            await self.worker.stop(grace)
        await self.notifier.close()
        await self.driver.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
