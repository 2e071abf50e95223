"""hosts placement and metering

Revision ID: df307f934a7e
Revises: 8a2a2528fb43
Create Date: 2026-11-25 04:58:16.559877
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "df307f934a7e"
down_revision = "8a2a2528fb43"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("location_code", sa.String(length=32), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("cpu_overcommit", sa.Float(), nullable=False),
        sa.Column("memory_overcommit", sa.Float(), nullable=False),
        sa.Column("disk_overcommit", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("draining", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_code"], ["locations.code"], name=op.f("fk_hosts_location_code_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
        sa.UniqueConstraint("name", name=op.f("uq_hosts_name")),
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hosts_location_code"), ["location_code"], unique=False)

    op.create_table(
        "server_charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("credit_entry_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_server_charges_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["credit_entry_id"],
            ["credit_entries.id"],
            name=op.f("fk_server_charges_credit_entry_id_credit_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_server_charges_server_id_servers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_charges")),
        sa.UniqueConstraint("server_id", "hour", name=op.f("uq_server_charges_server_id_hour")),
    )
    with op.batch_alter_table("server_charges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_server_charges_account_id"), ["account_id"], unique=False
        )

    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("billed_hours", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("next_charge_at", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_servers_next_charge_at"), ["next_charge_at"])
        batch_op.create_index(batch_op.f("ix_servers_host_id"), ["host_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_servers_host_id_hosts"), "hosts", ["host_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_servers_host_id_hosts"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_servers_host_id"))
        batch_op.drop_index(batch_op.f("ix_servers_next_charge_at"))
        batch_op.drop_column("next_charge_at")
        batch_op.drop_column("billed_hours")
        batch_op.drop_column("host_id")

    with op.batch_alter_table("server_charges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_server_charges_account_id"))

    op.drop_table("server_charges")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hosts_location_code"))

    op.drop_table("hosts")
