"""Backups and snapshots: their rows, the snapshot-hour ledger, and the action's backup

Revision ID: f3b5d7e9a1c4
Revises: e5a9c1d3f7b2
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f3b5d7e9a1c4"
down_revision = "e5a9c1d3f7b2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("volume", sa.String(length=128), nullable=False),
        sa.Column("size_gb", sa.Integer(), server_default="0", nullable=False),
        sa.Column("price_gb_hour_micros", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("billed_hours", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_charge_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("available_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_backups_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_backups_server_id_servers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backups")),
    )
    with op.batch_alter_table("backups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_backups_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_backups_next_charge_at"), ["next_charge_at"], unique=False
        )
        batch_op.create_index(
            "ix_backups_server_kind_created", ["server_id", "kind", "created_at"], unique=False
        )

    op.create_table(
        "snapshot_charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("backup_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("size_gb", sa.Integer(), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("credit_entry_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_snapshot_charges_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["backup_id"], ["backups.id"], name=op.f("fk_snapshot_charges_backup_id_backups")
        ),
        sa.ForeignKeyConstraint(
            ["credit_entry_id"],
            ["credit_entries.id"],
            name=op.f("fk_snapshot_charges_credit_entry_id_credit_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshot_charges")),
        sa.UniqueConstraint("backup_id", "hour", name=op.f("uq_snapshot_charges_backup_id")),
    )
    with op.batch_alter_table("snapshot_charges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_snapshot_charges_account_id"), ["account_id"], unique=False
        )

    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backups_disabled_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backup_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_actions_backup_id_backups"), "backups", ["backup_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_actions_backup_id_backups"), type_="foreignkey")
        batch_op.drop_column("backup_id")
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_column("backups_disabled_at")
    with op.batch_alter_table("snapshot_charges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_snapshot_charges_account_id"))
    op.drop_table("snapshot_charges")
    with op.batch_alter_table("backups", schema=None) as batch_op:
        batch_op.drop_index("ix_backups_server_kind_created")
        batch_op.drop_index(batch_op.f("ix_backups_next_charge_at"))
        batch_op.drop_index(batch_op.f("ix_backups_account_id"))
    op.drop_table("backups")
