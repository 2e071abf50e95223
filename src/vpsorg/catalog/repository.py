"""Catalog queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.catalog.models import Location, OperatingSystem, Plan, SshKey


async def list_plans(session: AsyncSession) -> Sequence[Plan]:
    return (await session.scalars(select(Plan).order_by(Plan.id))).all()


async def list_operating_systems(session: AsyncSession) -> Sequence[OperatingSystem]:
    return (await session.scalars(select(OperatingSystem).order_by(OperatingSystem.id))).all()


async def list_locations(session: AsyncSession) -> Sequence[Location]:
    return (await session.scalars(select(Location).order_by(Location.code))).all()


async def get_ssh_key(session: AsyncSession, account_id: int, key_id: int) -> SshKey | None:
    return await session.scalar(
        select(SshKey).where(SshKey.id == key_id, SshKey.account_id == account_id)
    )


async def list_ssh_keys(session: AsyncSession, account_id: int) -> Sequence[SshKey]:
    query = select(SshKey).where(SshKey.account_id == account_id).order_by(SshKey.id)
    return (await session.scalars(query)).all()


async def find_ssh_key_by_fingerprint(
    session: AsyncSession, account_id: int, fingerprint: str
) -> SshKey | None:
    return await session.scalar(
        select(SshKey).where(SshKey.account_id == account_id, SshKey.fingerprint == fingerprint)
    )
