"""SSH keys belong to an account; plans, OS images and locations are shared."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.catalog import repository
from vpsorg.catalog.models import SshKey
from vpsorg.catalog.schemas import SshKeyCreate
from vpsorg.catalog.sshkeys import parse_public_key
from vpsorg.errors import InvalidParameters, NotFound


async def get_ssh_key(session: AsyncSession, account: Account, key_id: int) -> SshKey:
    key = await repository.get_ssh_key(session, account.id, key_id)
    if key is None:
        raise NotFound(f"SSH key {key_id} not found.")
    return key


async def create_ssh_key(session: AsyncSession, account: Account, data: SshKeyCreate) -> SshKey:
    public_key, fingerprint = parse_public_key(data.public_key)
    if await repository.find_ssh_key_by_fingerprint(session, account.id, fingerprint):
        raise InvalidParameters.field("public_key", "This key is already on the account.")
    key = SshKey(
        account_id=account.id, name=data.name, public_key=public_key, fingerprint=fingerprint
    )
    session.add(key)
    await session.flush()
    return key


async def delete_ssh_key(session: AsyncSession, key: SshKey) -> None:
    await session.delete(key)
    await session.flush()
