"""SSH keys belong to an account; plans, OS images and locations are shared."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.catalog import repository
from vpsorg.catalog.models import OperatingSystem, Plan, SshKey
from vpsorg.catalog.schemas import SshKeyCreate
from vpsorg.catalog.sshkeys import parse_public_key
from vpsorg.errors import Conflict, InvalidParameters, InvalidState, NotFound


async def get_ssh_key(session: AsyncSession, account: Account, key_id: int) -> SshKey:
    key = await repository.get_ssh_key(session, account.id, key_id)
    if key is None:
        raise NotFound(f"SSH key {key_id} not found.")
    return key


async def create_ssh_key(session: AsyncSession, account: Account, data: SshKeyCreate) -> SshKey:
    public_key, fingerprint = parse_public_key(data.public_key)
    if await repository.find_ssh_key_by_fingerprint(session, account.id, fingerprint):
        raise Conflict.field("public_key", "This key is already on the account.")
    key = SshKey(
        account_id=account.id, name=data.name, public_key=public_key, fingerprint=fingerprint
    )
    session.add(key)
    await session.flush()
    return key


async def delete_ssh_key(session: AsyncSession, key: SshKey) -> None:
    await session.delete(key)
    await session.flush()


# -- plans -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSize:
    """What a plan gives a server; fixed once a server uses the plan."""

    vcpus: int
    memory_mb: int
    storage_gb: int
    bandwidth_gb: int


SIZE_FIELDS = ("vcpus", "memory_mb", "storage_gb", "bandwidth_gb")


async def get_plan(session: AsyncSession, plan_id: int) -> Plan:
    """The plan, locked for the change the caller is about to make."""
    plan = await repository.lock_plan(session, plan_id)
    if plan is None:
        raise NotFound(f"Plan {plan_id} not found.")
    return plan


async def add_plan(
    session: AsyncSession, name: str, size: PlanSize, price_hourly_micros: int
) -> Plan:
    errors = _plan_errors(name, size)
    if price_hourly_micros < 0:
        errors["price_hourly"] = ["A price can't be negative."]
    if errors:
        raise InvalidParameters("The plan cannot be added.", errors)
    plan = Plan(
        name=name.strip(),
        vcpus=size.vcpus,
        memory_mb=size.memory_mb,
        storage_gb=size.storage_gb,
        bandwidth_gb=size.bandwidth_gb,
        price_hourly_micros=price_hourly_micros,
        available=True,
    )
    session.add(plan)
    await session.flush()
    return plan


async def update_plan(
    session: AsyncSession, plan_id: int, name: str | None, size: PlanSize | None
) -> Plan:
    """Rename a plan, or resize it while no server uses it (a server's size is its plan's).

    Prices change through ``billing.service.set_plan_price``, which settles accounts first.
    """
    plan = await get_plan(session, plan_id)
    errors = _plan_errors(plan.name if name is None else name, size)
    if errors:
        raise InvalidParameters(f"Plan {plan_id} cannot be changed.", errors)
    if size is not None and size != _size_of(plan):
        used = await repository.servers_on_plan(session, plan_id)
        if used:
            raise InvalidState(
                f"Plan {plan_id} is used by {used} server(s): its vCPUs, memory, disk and "
                "bandwidth are fixed; add a new plan instead."
            )
        for field in SIZE_FIELDS:
            setattr(plan, field, getattr(size, field))
    if name is not None:
        plan.name = name.strip()
    await session.flush()
    return plan


async def set_plan_available(session: AsyncSession, plan_id: int, available: bool) -> Plan:
    """A plan that is not available is refused for new servers; its servers keep it."""
    plan = await get_plan(session, plan_id)
    plan.available = available
    await session.flush()
    return plan


def _size_of(plan: Plan) -> PlanSize:
    return PlanSize(*(getattr(plan, field) for field in SIZE_FIELDS))


def _plan_errors(name: str, size: PlanSize | None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not name.strip() or len(name) > 100:
        errors["name"] = ["Give a name of 1-100 characters."]
    for field in SIZE_FIELDS if size is not None else ():
        if getattr(size, field) <= 0:
            errors[field] = ["Must be a positive whole number."]
    return errors


# -- operating systems ---------------------------------------------------------------------


async def add_operating_system(
    session: AsyncSession,
    name: str,
    image: str,
    *,
    kernel: str | None = None,
    initrd: str | None = None,
    cmdline: str | None = None,
) -> OperatingSystem:
    """Register an OS image; its slug is made from the name, unique."""
    errors: dict[str, list[str]] = {}
    if not name.strip() or len(name) > 100:
        errors["name"] = ["Give a name of 1-100 characters."]
    if not image:
        errors["image"] = ["Give the base image's path or URL."]
    if (kernel is None) != (initrd is None):
        errors["kernel" if kernel is None else "initrd"] = [
            "Direct kernel boot needs both a kernel and an initrd."
        ]
    if errors:
        raise InvalidParameters("The operating system cannot be added.", errors)
    os = OperatingSystem(
        name=name.strip(), slug=await _free_slug(session, name), image=image, kernel=kernel,
        initrd=initrd, cmdline=cmdline, available=True,
    )  # fmt: skip
    session.add(os)
    await session.flush()
    return os


async def _free_slug(session: AsyncSession, name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:90] or "os"
    taken = set((await session.scalars(
        select(OperatingSystem.slug).where(OperatingSystem.slug.startswith(base))
    )).all())  # fmt: skip
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


async def get_operating_system(session: AsyncSession, os_id: int) -> OperatingSystem:
    """The operating system, locked for the change the caller is about to make."""
    os = await repository.lock_operating_system(session, os_id)
    if os is None:
        raise NotFound(f"Operating system {os_id} not found.")
    return os


async def update_operating_system(
    session: AsyncSession,
    os_id: int,
    *,
    name: str | None = None,
    image: str | None = None,
    kernel: str | None = None,
    initrd: str | None = None,
    cmdline: str | None = None,
) -> OperatingSystem:
    """Change what new servers (and rebuilds) of this OS get; its slug stays."""
    os = await get_operating_system(session, os_id)
    if name is not None and (not name.strip() or len(name) > 100):
        raise InvalidParameters.field("name", "Give a name of 1-100 characters.")
    if image is not None and not image:
        raise InvalidParameters.field("image", "Give the base image's path or URL.")
    kernel = os.kernel if kernel is None else kernel or None
    initrd = os.initrd if initrd is None else initrd or None
    if (kernel is None) != (initrd is None):
        raise InvalidParameters.field(
            "kernel" if kernel is None else "initrd",
            "Direct kernel boot needs both a kernel and an initrd.",
        )
    os.name = os.name if name is None else name.strip()
    os.image = os.image if image is None else image
    os.kernel, os.initrd = kernel, initrd
    os.cmdline = os.cmdline if cmdline is None else cmdline or None
    await session.flush()
    return os


async def set_operating_system_available(
    session: AsyncSession, os_id: int, available: bool
) -> OperatingSystem:
    """An OS that is not available is refused for new servers; its servers keep running."""
    os = await get_operating_system(session, os_id)
    os.available = available
    await session.flush()
    return os


async def remove_operating_system(session: AsyncSession, os_id: int) -> OperatingSystem:
    """Forget an OS no server (deleted ones included) refers to; returns it, removed."""
    os = await get_operating_system(session, os_id)
    used = await repository.servers_on_operating_system(session, os_id)
    if used:
        raise InvalidState(
            f"Operating system {os_id} is used by {used} server(s) (deleted ones count); "
            "disable it instead."
        )
    await session.delete(os)
    await session.flush()
    return os
