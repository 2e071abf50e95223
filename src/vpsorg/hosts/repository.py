"""Host queries: the hosts themselves and what their servers take of them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.catalog.models import Plan
from vpsorg.hosts.models import Host
from vpsorg.servers.models import Server, ServerStatus


@dataclass(frozen=True)
class Allocation:
    """What a host's servers take: every server until it is deleted holds its plan."""

    servers: int = 0
    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0


async def get_by_name(session: AsyncSession, name: str) -> Host | None:
    return await session.scalar(select(Host).where(Host.name == name))


async def hosts_with_allocations(
    session: AsyncSession, location: str | None = None
) -> list[tuple[Host, Allocation]]:
    """Each host (of a location, or all) with its allocation, in one query (placement asks it
    while holding the location's lock, so every round trip there delays the next create)."""
    rows = await session.execute(
        select(
            Host,
            func.count(Server.id),
            func.coalesce(func.sum(Plan.vcpus), 0),
            func.coalesce(func.sum(Plan.memory_mb), 0),
            func.coalesce(func.sum(Plan.storage_gb), 0),
        )
        .outerjoin(Server, (Server.host_id == Host.id) & (Server.status != ServerStatus.DELETED))
        .outerjoin(Plan, Server.plan_id == Plan.id)
        .where(Host.location_code == location if location is not None else true())
        .group_by(Host.id)
        .order_by(Host.location_code, Host.name)
    )
    return [
        (host, Allocation(int(count), int(vcpus), int(memory), int(disk)))
        for host, count, vcpus, memory, disk in rows
    ]
