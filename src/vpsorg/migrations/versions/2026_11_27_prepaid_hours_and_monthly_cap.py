"""Prepaid hours: each charge's start time, the monthly cap's running total, refunds

Revision ID: 5b7d2e8c1f04
Revises: 3c9e41d07b21
Create Date: 2026-11-27 17:40:00
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "5b7d2e8c1f04"
down_revision = "3c9e41d07b21"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("month_period", sa.String(length=7), nullable=True))
        batch_op.add_column(
            sa.Column("month_paid_micros", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("refunded_at", sa.DateTime(), nullable=True))

    with op.batch_alter_table("server_charges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("starts_at", sa.DateTime(), nullable=True))
    # Hours charged before this change started at created_at + hour (hours were not re-anchored).
    servers = sa.table("servers", sa.column("id"), sa.column("created_at", sa.DateTime()))
    charges = sa.table(
        "server_charges",
        sa.column("server_id"),
        sa.column("hour"),
        sa.column("starts_at", sa.DateTime()),
    )
    created = (
        sa.select(servers.c.created_at).where(servers.c.id == charges.c.server_id).scalar_subquery()
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(charges.c.server_id, charges.c.hour, created)).all()
    for server_id, hour, created_at in rows:
        bind.execute(
            charges.update()
            .where(charges.c.server_id == server_id, charges.c.hour == hour)
            .values(starts_at=created_at + timedelta(hours=hour))
        )
    with op.batch_alter_table("server_charges", schema=None) as batch_op:
        batch_op.alter_column("starts_at", existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("server_charges", schema=None) as batch_op:
        batch_op.drop_column("starts_at")

    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_column("refunded_at")
        batch_op.drop_column("month_paid_micros")
        batch_op.drop_column("month_period")
