"""Automatic backups: a periodic job in every worker takes the ones due and prunes old ones.

A server with backups enabled gets one backup per ``backup_interval``, at its own offset in
the interval (from its id), so a host's servers are not all copied at the same moment. Its
latest ``backup_retention`` automatic backups are kept; older ones are deleted. When backups
are turned off, no new ones are taken and the automatic ones are deleted ``backup_retention``
days later. Each server is decided under its row lock, so workers running this at the same
time take each backup once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vpsorg.backups import repository, service
from vpsorg.clock import utcnow
from vpsorg.config import Settings
from vpsorg.db import transaction

log = logging.getLogger(__name__)

EPOCH = datetime(2000, 1, 1)
SPREAD = 2_654_435_761  # Knuth's multiplicative hash: neighbouring ids far apart


def offset_seconds(server_id: int, interval: float) -> float:
    """Where in each interval the server's backup falls."""
    return float((server_id * SPREAD) % max(1, int(interval)))


def slot_start(server_id: int, interval: float, now: datetime) -> datetime:
    """The start of the server's current backup slot: its latest due moment not after now."""
    offset = offset_seconds(server_id, interval)
    elapsed = (now - EPOCH).total_seconds() - offset
    slots = elapsed // interval
    return EPOCH + timedelta(seconds=offset + slots * interval)


def is_due(
    server_id: int, provisioned_at: datetime, last: datetime | None, interval: float, now: datetime
) -> bool:
    """A slot began since the server was built and no automatic backup was taken in it."""
    start = slot_start(server_id, interval, now)
    return start >= provisioned_at and (last is None or last < start)


async def run(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """Take the automatic backups due and prune old ones; returns how many actions it queued."""
    now = utcnow()
    queued = 0
    after_id = 0
    while True:
        async with transaction(sessions) as session:
            batch = await repository.servers_with_backups(session, after_id, 200)
        if not batch:
            break
        after_id = batch[-1][0]
        for server_id, provisioned_at, last in batch:
            if provisioned_at is None:
                continue
            if is_due(server_id, provisioned_at, last, settings.backup_interval, now):
                async with transaction(sessions) as session:
                    queued += await _take_if_due(session, server_id, settings, now)
    cutoff = now - timedelta(days=settings.backup_retention)
    async with transaction(sessions) as session:
        to_prune = await repository.servers_to_prune(
            session, retention=settings.backup_retention, disabled_before=cutoff
        )
    for server_id in to_prune:
        async with transaction(sessions) as session:
            queued += await _prune(session, server_id, settings, cutoff)
    return queued


async def _take_if_due(
    session: AsyncSession, server_id: int, settings: Settings, now: datetime
) -> int:
    server = await repository.lock_server(session, server_id)
    if server is None or not server.backups_enabled or server.deleted_at is not None:
        return 0
    if server.status not in repository.SCHEDULED_STATUSES or server.provisioned_at is None:
        return 0
    latest = await repository.automatic_of(session, server_id)
    last = latest[0].created_at if latest else None
    if not is_due(server_id, server.provisioned_at, last, settings.backup_interval, now):
        return 0  # another worker took it just now
    await service.take_automatic_backup(session, server, now)
    log.info("automatic backup of server %d queued", server_id)
    return 1


async def _prune(
    session: AsyncSession, server_id: int, settings: Settings, cutoff: datetime
) -> int:
    server = await repository.lock_server(session, server_id)
    if server is None or server.deleted_at is not None:
        return 0
    backups = await repository.automatic_of(session, server_id)
    if server.backups_enabled:
        doomed = list(backups[settings.backup_retention :])
    elif server.backups_disabled_at is not None and server.backups_disabled_at < cutoff:
        doomed = list(backups)
    else:
        doomed = []
    for backup in doomed:
        await service.delete_backup(session, server, backup)
    return len(doomed)
