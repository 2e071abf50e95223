"""Host queries: the hosts themselves and what their servers take of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
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


async def list_hosts(session: AsyncSession, location: str | None = None) -> Sequence[Host]:
    query = select(Host).order_by(Host.location_code, Host.name)
    if location is not None:
        query = query.where(Host.location_code == location)
    return (await session.scalars(query)).all()


async def count_in_location(session: AsyncSession, location: str) -> int:
    query = select(func.count()).select_from(Host).where(Host.location_code == location)
    return int(await session.scalar(query) or 0)


async def hosts_with_allocations(
    session: AsyncSession, location: str
) -> list[tuple[Host, Allocation]]:
    """Each host of a location with its allocation, in one query (placement asks it while
    holding the location's lock, so every round trip there delays the next create)."""
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
        .where(Host.location_code == location)
        .group_by(Host.id)
        .order_by(Host.name)
    )
    return [
        (host, Allocation(int(count), int(vcpus), int(memory), int(disk)))
        for host, count, vcpus, memory, disk in rows
    ]


async def allocations(session: AsyncSession, host_ids: Sequence[int]) -> dict[int, Allocation]:
    """Each host's allocation, by host id (hosts with no servers are absent)."""
    if not host_ids:
        return {}
    rows = await session.execute(
        select(
            Server.host_id,
            func.count(Server.id),
            func.sum(Plan.vcpus),
            func.sum(Plan.memory_mb),
            func.sum(Plan.storage_gb),
        )
        .join(Plan, Server.plan_id == Plan.id)
        .where(Server.host_id.in_(host_ids), Server.status != ServerStatus.DELETED)
        .group_by(Server.host_id)
    )
    return {
        int(host_id or 0): Allocation(int(count), int(vcpus), int(memory), int(disk))
        for host_id, count, vcpus, memory, disk in rows
    }
