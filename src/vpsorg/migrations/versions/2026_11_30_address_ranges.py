"""Address ranges per location (several IPv4 and IPv6 each, cursor + released offsets) and
each location's network mode

Each location's ipv4_pool and ipv6_pool become its first two ranges (gateway: the first
host, as before). Servers keep their addresses: a range's cursor starts after the highest
offset in use, and the free offsets below it are recorded as released, to be reused first.

Revision ID: e5a9c1d3f7b2
Revises: c4d8f2a6e913
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "e5a9c1d3f7b2"
down_revision = "c4d8f2a6e913"
branch_labels = None
depends_on = None

locations = sa.table(
    "locations",
    sa.column("code", sa.String),
    sa.column("ipv4_pool", sa.String),
    sa.column("ipv6_pool", sa.String),
)
servers = sa.table(
    "servers",
    sa.column("location_code", sa.String),
    sa.column("ipv4_address", sa.String),
    sa.column("ipv6_address", sa.String),
)
ranges = sa.table(
    "address_ranges",
    sa.column("id", sa.Integer),
    sa.column("location_code", sa.String),
    sa.column("family", sa.Integer),
    sa.column("cidr", sa.String),
    sa.column("gateway", sa.String),
    sa.column("next_offset", sa.BigInteger),
    sa.column("created_at", sa.DateTime),
)
released = sa.table(
    "released_addresses", sa.column("range_id", sa.Integer), sa.column("offset", sa.BigInteger)
)


def upgrade() -> None:
    op.create_table(
        "address_ranges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("location_code", sa.String(length=32), nullable=False),
        sa.Column("family", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("gateway", sa.String(length=64), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_code"],
            ["locations.code"],
            name=op.f("fk_address_ranges_location_code_locations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_ranges")),
        sa.UniqueConstraint("cidr", name=op.f("uq_address_ranges_cidr")),
    )
    with op.batch_alter_table("address_ranges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_address_ranges_location_code"), ["location_code"], unique=False
        )
    op.create_table(
        "released_addresses",
        sa.Column("range_id", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["range_id"],
            ["address_ranges.id"],
            name=op.f("fk_released_addresses_range_id_address_ranges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("range_id", "offset", name=op.f("pk_released_addresses")),
    )
    _move_pools_into_ranges()
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("network_mode", sa.String(length=16), nullable=False, server_default="nat")
        )
        batch_op.add_column(sa.Column("network_name", sa.String(length=64), nullable=True))
        batch_op.drop_column("ipv4_pool")
        batch_op.drop_column("ipv6_pool")


def _move_pools_into_ranges() -> None:
    bind = op.get_bind()
    held: dict[str, list[str]] = {}
    for code, v4, v6 in bind.execute(sa.select(servers)):
        held.setdefault(code, []).extend(a for a in (v4, v6) if a is not None)
    now = datetime.now(UTC).replace(tzinfo=None)
    for code, *pools in bind.execute(sa.select(locations).order_by(locations.c.code)).all():
        for pool in pools:
            network = ipaddress.ip_network(pool)
            gateway = next(network.hosts())
            base = int(network.network_address)
            used = {
                int(ipaddress.ip_address(a)) - base
                for a in held.get(code, [])
                if ipaddress.ip_address(a).version == network.version
                and ipaddress.ip_address(a) in network
            }
            gateway_offset = int(gateway) - base
            next_offset = max(used | {gateway_offset}) + 1
            range_id = bind.execute(
                ranges.insert().returning(ranges.c.id),
                {
                    "location_code": code,
                    "family": network.version,
                    "cidr": str(network),
                    "gateway": str(gateway),
                    "next_offset": next_offset,
                    "created_at": now,
                },
            ).scalar_one()
            gaps = set(range(1, next_offset)) - used - {gateway_offset}
            if gaps:
                bind.execute(
                    released.insert(), [{"range_id": range_id, "offset": o} for o in sorted(gaps)]
                )


def downgrade() -> None:
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ipv4_pool", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("ipv6_pool", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    first: dict[tuple[str, int], str] = {}
    for code, family, cidr in bind.execute(
        sa.select(ranges.c.location_code, ranges.c.family, ranges.c.cidr).order_by(ranges.c.id)
    ):
        first.setdefault((code, family), cidr)
    for (code, family), cidr in first.items():
        column = "ipv4_pool" if family == 4 else "ipv6_pool"
        bind.execute(sa.update(locations).where(locations.c.code == code).values({column: cidr}))
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.alter_column("ipv4_pool", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("ipv6_pool", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("network_name")
        batch_op.drop_column("network_mode")
    op.drop_table("released_addresses")
    with op.batch_alter_table("address_ranges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_address_ranges_location_code"))
    op.drop_table("address_ranges")
