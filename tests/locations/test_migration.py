"""The address-ranges migration keeps every server's addresses and frees only the gaps."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from vpsorg import migrate

if TYPE_CHECKING:
    from tests.conftest import DatabaseProvider

BEFORE = "c4d8f2a6e913"


def empty_database(databases: DatabaseProvider, tmp_path: Path) -> str:
    if not databases.is_postgres:
        return f"sqlite:///{tmp_path / 'migrating.db'}"
    name = f"vpsorg_m_{uuid.uuid4().hex[:10]}"
    databases._admin(f'CREATE DATABASE "{name}"')
    databases.created.append(name)
    return databases._url(name)


def sync_engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                            poolclass=NullPool)  # fmt: skip


def row(table: sa.Table, **given: Any) -> dict[str, Any]:
    """``given``, plus a placeholder for every other required column."""
    dummies = {sa.Integer: 0, sa.BigInteger: 0, sa.String: "x", sa.Text: "x", sa.Boolean: False,
               sa.Float: 0.0, sa.DateTime: datetime(2026, 11, 1)}  # fmt: skip
    values = dict(given)
    for column in table.columns:
        if column.name in values or column.nullable or column.primary_key:
            continue
        if column.server_default is None:
            values[column.name] = next(v for t, v in dummies.items() if isinstance(column.type, t))
    return values


def test_pools_become_ranges_and_servers_keep_their_addresses(databases, tmp_path):
    url = empty_database(databases, tmp_path)
    migrate.upgrade(url, BEFORE)
    engine = sync_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    servers = meta.tables["servers"]
    held = [("203.0.113.2", "2001:db8:1::2"), ("203.0.113.3", "2001:db8:1::4"),
            ("203.0.113.5", None), ("198.51.100.2", "2001:db8:2::2")]  # fmt: skip
    with engine.begin() as conn:
        account = conn.execute(
            meta.tables["accounts"].insert().values(row(meta.tables["accounts"], name="a"))
        ).inserted_primary_key[0]
        for n, (v4, v6) in enumerate(held):
            location = "us-west" if v4.startswith("203.") else "us-east"
            conn.execute(servers.insert().values(row(
                servers, account_id=account, name=f"s{n}", location_code=location, plan_id=1,
                os_id=1, status="active", ipv4_address=v4, ipv6_address=v6,
            )))  # fmt: skip

    migrate.upgrade(url)

    with engine.begin() as conn:
        ranges = {
            r.cidr: r
            for r in conn.execute(sa.text("SELECT * FROM address_ranges ORDER BY id")).all()
        }
        released = {
            (r.range_id, r.offset)
            for r in conn.execute(sa.text('SELECT range_id, "offset" FROM released_addresses'))
        }
        modes = set(conn.execute(sa.text("SELECT network_mode FROM locations")).scalars())
        kept = conn.execute(sa.text("SELECT ipv4_address, ipv6_address FROM servers")).all()
    engine.dispose()

    west4, west6 = ranges["203.0.113.0/24"], ranges["2001:db8:1::/48"]
    assert (west4.location_code, west4.family, west4.gateway) == ("us-west", 4, "203.0.113.1")
    assert west4.next_offset == 6 and west6.next_offset == 5
    assert ranges["198.51.100.0/24"].next_offset == 3
    assert ranges["192.0.2.0/25"].next_offset == 2  # nothing held: just past the gateway
    assert released == {(west4.id, 4), (west6.id, 3)}  # the gaps, and only them
    assert sorted(kept, key=str) == sorted(held, key=str)
    assert modes == {"nat"}
