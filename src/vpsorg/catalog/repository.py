"""Catalog queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Integer, Row, Select, bindparam, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.catalog.models import OperatingSystem, Plan, SshKey
from vpsorg.hosts.models import Host
from vpsorg.locations.models import Location
from vpsorg.servers.models import Server


class Found(NamedTuple):
    """What ``find_references`` found; None for what was not asked or does not exist."""

    plan: Plan | None
    os: OperatingSystem | None
    location: Location | None
    ssh_key: SshKey | None
    location_has_hosts: bool = False
    """Whether any host is registered in the location (none: its servers go on the
    driver's default host, and placement has nothing to weigh)."""


async def list_plans(session: AsyncSession) -> Sequence[Plan]:
    return (await session.scalars(select(Plan).order_by(Plan.id))).all()


async def list_operating_systems(session: AsyncSession) -> Sequence[OperatingSystem]:
    return (await session.scalars(select(OperatingSystem).order_by(OperatingSystem.id))).all()


async def lock_plan(session: AsyncSession, plan_id: int) -> Plan | None:
    return await session.scalar(select(Plan).where(Plan.id == plan_id).with_for_update())


async def lock_operating_system(session: AsyncSession, os_id: int) -> OperatingSystem | None:
    query = select(OperatingSystem).where(OperatingSystem.id == os_id).with_for_update()
    return await session.scalar(query)


async def servers_on_plan(session: AsyncSession, plan_id: int) -> int:
    """How many servers, deleted ones included (their history names the plan), use it."""
    query = select(func.count()).select_from(Server).where(Server.plan_id == plan_id)
    return int(await session.scalar(query) or 0)


async def servers_on_operating_system(session: AsyncSession, os_id: int) -> int:
    """How many servers, deleted ones included (their row refers to it), use the OS."""
    query = select(func.count()).select_from(Server).where(Server.os_id == os_id)
    return int(await session.scalar(query) or 0)


async def list_locations(session: AsyncSession) -> Sequence[Location]:
    return (await session.scalars(select(Location).order_by(Location.code))).all()


async def get_ssh_key(session: AsyncSession, account_id: int, key_id: int) -> SshKey | None:
    return await session.scalar(
        select(SshKey).where(SshKey.id == key_id, SshKey.account_id == account_id)
    )


async def lock_ssh_key(session: AsyncSession, account_id: int, key_id: int) -> SshKey | None:
    """The account's key, held (``FOR KEY SHARE``: a delete waits) until the transaction ends."""
    return await session.scalar(
        select(SshKey)
        .where(SshKey.id == key_id, SshKey.account_id == account_id)
        .with_for_update(read=True, key_share=True)
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


async def find_references(
    session: AsyncSession,
    account_id: int,
    *,
    plan_id: int | None,
    os_id: int | None,
    location: str | None,
    ssh_key_id: int | None,
) -> Found:
    """The plan, OS, location and (the account's) SSH key a new server names, in one query.

    A create needs all four and asks for them on every request, valid or not: each is
    LEFT JOINed to a one-row select, so one round trip answers them all and a missing one
    comes back as None rather than as no row.
    """
    parameters = {
        "account_id": account_id,
        **reference_parameters(plan_id, os_id, location, ssh_key_id),
    }
    return found_in((await session.execute(_REFERENCES, parameters)).one())


def with_references(query: Select[Any], account_id: Any) -> Select[Any]:
    """``query`` (of one row) with the references a new server names LEFT JOINed to it, by
    the parameters of ``reference_parameters`` (a NULL one matches nothing; ``found_in``
    reads them back); the SSH key only if it is ``account_id``'s (a column of ``query``).
    Built once: which ids a body gives changes the parameters, not the statement."""
    has_hosts = exists().where(Host.location_code == Location.code)
    return (
        query.add_columns(Plan, OperatingSystem, Location, SshKey, has_hosts.label("hosts"))
        .outerjoin(Plan, Plan.id == bindparam("plan_id"))
        .outerjoin(OperatingSystem, OperatingSystem.id == bindparam("os_id"))
        .outerjoin(Location, Location.code == bindparam("location"))
        .outerjoin(
            SshKey, (SshKey.id == bindparam("ssh_key_id")) & (SshKey.account_id == account_id)
        )
    )


def reference_parameters(
    plan_id: int | None, os_id: int | None, location: str | None, ssh_key_id: int | None
) -> dict[str, Any]:
    return {"plan_id": plan_id, "os_id": os_id, "location": location, "ssh_key_id": ssh_key_id}


_ONE = select(literal(1).label("one")).subquery()
_REFERENCES = with_references(select().select_from(_ONE), bindparam("account_id", type_=Integer()))


def found_in(row: Row[Any]) -> Found:
    mapping = row._mapping
    return Found(
        mapping[Plan],
        mapping[OperatingSystem],
        mapping[Location],
        mapping[SshKey],
        bool(mapping["hosts"]),
    )
