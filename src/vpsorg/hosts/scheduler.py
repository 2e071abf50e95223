"""Placement: which host a new server runs on.

Filter, then weigh, like Nova's filter scheduler: a host qualifies when it is enabled, not
draining, in the requested location, and has room for the plan after overcommit (vCPUs,
memory, disk); among those, the one with the most free memory wins (ties go to the name
that sorts first, so placement is predictable).

A location with no hosts registered at all runs on the driver's default host (the
one-machine install). A location whose hosts are all full, disabled or draining refuses
the server with 503 ``capacity_unavailable`` before anything is charged or allocated.
Callers hold the location's row lock (``locations.ipam.lock_pools``), so two creates in one
location cannot both take the last room on a host.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.catalog.models import Plan
from vpsorg.errors import CapacityUnavailable
from vpsorg.hosts import repository
from vpsorg.hosts.models import Host
from vpsorg.hosts.repository import Allocation
from vpsorg.locations.models import Location


@dataclass(frozen=True)
class Room:
    """What is left on a host after overcommit."""

    vcpus: float
    memory_mb: float
    disk_gb: float

    def fits(self, plan: Plan) -> bool:
        return (
            plan.vcpus <= self.vcpus
            and plan.memory_mb <= self.memory_mb
            and plan.storage_gb <= self.disk_gb
        )


def room(host: Host, used: Allocation) -> Room:
    return Room(
        vcpus=host.vcpus * host.cpu_overcommit - used.vcpus,
        memory_mb=host.memory_mb * host.memory_overcommit - used.memory_mb,
        disk_gb=host.disk_gb * host.disk_overcommit - used.disk_gb,
    )


async def place(session: AsyncSession, location: Location, plan: Plan) -> Host | None:
    """The host for a new server of ``plan`` in ``location``; None for the default host."""
    hosts = await repository.hosts_with_allocations(session, location.code)
    if not hosts:
        return None
    rooms = [(room(h, used), h) for h, used in hosts if h.enabled and not h.draining]
    candidates = [(left, host) for left, host in rooms if left.fits(plan)]
    if not candidates:
        raise CapacityUnavailable(
            f"No host in '{location.code}' has room for a '{plan.name}' server "
            f"({plan.vcpus} vCPUs, {plan.memory_mb} MB, {plan.storage_gb} GB) right now; "
            "try another location or a smaller plan."
        )
    candidates.sort(key=lambda pair: (-pair[0].memory_mb, pair[1].name))
    return candidates[0][1]
