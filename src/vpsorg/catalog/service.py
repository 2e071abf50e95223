"""SSH keys belong to an account; plans, OS images and locations are shared."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.catalog import repository
from vpsorg.catalog.models import OperatingSystem, SshKey
from vpsorg.catalog.schemas import SshKeyCreate
from vpsorg.catalog.sshkeys import parse_public_key
from vpsorg.errors import Conflict, InvalidParameters, NotFound


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
