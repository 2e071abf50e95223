"""Operator actions on hosts: register, disable, drain, enable."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.drivers.base import HostCapacity
from vpsorg.errors import InvalidParameters, NotFound
from vpsorg.hosts import repository
from vpsorg.hosts.models import Host
from vpsorg.locations.models import Location

HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,98}[A-Za-z0-9])?")


@dataclass(frozen=True)
class Overcommit:
    cpu: float = 4.0
    memory: float = 1.0
    disk: float = 1.0


async def add_host(
    session: AsyncSession,
    name: str,
    location: str,
    uri: str,
    capacity: HostCapacity,
    overcommit: Overcommit = Overcommit(),
) -> Host:
    errors: dict[str, list[str]] = {}
    if not HOST_NAME.fullmatch(name):
        errors["name"] = ["Use letters, digits, dots and hyphens (1-100 characters)."]
    elif await repository.get_by_name(session, name) is not None:
        errors["name"] = [f"A host named '{name}' exists."]
    if await session.get(Location, location) is None:
        errors["location"] = [f"Unknown location '{location}'."]
    if "://" not in uri:
        errors["uri"] = ["Give a libvirt URI such as qemu+ssh://kvm1.example.com/system."]
    for field, value in (("vcpus", capacity.vcpus), ("memory_mb", capacity.memory_mb),
                         ("disk_gb", capacity.disk_gb)):  # fmt: skip
        if value < 1:
            errors[field] = ["Must be at least 1."]
    for field, ratio in (("cpu_overcommit", overcommit.cpu),
                         ("memory_overcommit", overcommit.memory),
                         ("disk_overcommit", overcommit.disk)):  # fmt: skip
        if not 0 < ratio <= 64:
            errors[field] = ["Must be above 0 and at most 64."]
    if errors:
        raise InvalidParameters("The host cannot be added.", errors)
    host = Host(
        name=name, location_code=location, uri=uri, vcpus=capacity.vcpus,
        memory_mb=capacity.memory_mb, disk_gb=capacity.disk_gb, cpu_overcommit=overcommit.cpu,
        memory_overcommit=overcommit.memory, disk_overcommit=overcommit.disk,
        enabled=True, draining=False,
    )  # fmt: skip
    session.add(host)
    await session.flush()
    return host


async def get_host(session: AsyncSession, name: str) -> Host:
    host = await repository.get_by_name(session, name)
    if host is None:
        raise NotFound(f"No host named '{name}'.")
    return host


async def disable(session: AsyncSession, name: str) -> Host:
    """Out of service: nothing new is placed on it, and the reconciler leaves it alone."""
    host = await get_host(session, name)
    host.enabled = False
    return host


async def drain(session: AsyncSession, name: str) -> Host:
    """Nothing new is placed on it; its servers keep running and are still reconciled."""
    host = await get_host(session, name)
    host.draining = True
    return host


async def enable(session: AsyncSession, name: str) -> Host:
    """Back in service: undoes disable and drain."""
    host = await get_host(session, name)
    host.enabled, host.draining = True, False
    return host
