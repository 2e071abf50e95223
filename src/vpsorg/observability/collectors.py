"""Gauges read from the database at scrape time, and the /metrics document.

Queue depth and servers by status are facts of the database, not of a process: they are
read by one scrape (two small queries), so any number of processes report the same
numbers and none keeps a copy that could drift.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from vpsorg.actions import queue
from vpsorg.clock import utcnow
from vpsorg.db import transaction
from vpsorg.observability.health import READY_TIMEOUT
from vpsorg.observability.metrics import process_registry
from vpsorg.servers import repository as servers

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatabaseSnapshot:
    runnable: int = 0
    oldest_runnable: datetime | None = None
    servers: dict[tuple[str, str], int] = field(default_factory=dict)
    taken_at: datetime = field(default_factory=utcnow)


async def read_snapshot(runtime: Runtime) -> DatabaseSnapshot | None:
    """The database's numbers, or None when it does not answer in time."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with transaction(runtime.read_sessions) as session:
                runnable, oldest = await queue.runnable_backlog(session)
                counts = await servers.count_by_status_and_location(session)
    except Exception as exc:
        log.warning("metrics: the database gauges are missing: %s", exc or type(exc).__name__)
        return None
    return DatabaseSnapshot(runnable, oldest, counts)


class DatabaseCollector(Collector):
    """Turns one snapshot into gauges (``vpsorg_database_up`` 0 when there is none)."""

    def __init__(self, snapshot: DatabaseSnapshot | None) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snapshot = self.snapshot
        up = GaugeMetricFamily(
            "vpsorg_database_up", "Whether the database answered this scrape's queries."
        )
        up.add_metric([], 0 if snapshot is None else 1)
        yield up
        if snapshot is None:
            return
        yield GaugeMetricFamily(
            "vpsorg_action_queue_depth",
            "Actions a worker could claim now (pending and due, or with an expired lease).",
            value=snapshot.runnable,
        )
        age = 0.0
        if snapshot.oldest_runnable is not None:
            age = max(0.0, (snapshot.taken_at - snapshot.oldest_runnable).total_seconds())
        yield GaugeMetricFamily(
            "vpsorg_action_queue_oldest_age_seconds",
            "Age of the oldest action a worker could claim now (0 when there is none).",
            value=age,
        )
        by_status = GaugeMetricFamily(
            "vpsorg_servers", "Servers by status and location.", labels=["status", "location"]
        )
        for (status, location), count in sorted(snapshot.servers.items()):
            by_status.add_metric([status, location], count)
        yield by_status


async def render(runtime: Runtime) -> bytes:
    """The /metrics document: the processes' counters, then the database's gauges."""
    snapshot = await read_snapshot(runtime)
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(snapshot))
    return generate_latest(process_registry()) + generate_latest(database)
