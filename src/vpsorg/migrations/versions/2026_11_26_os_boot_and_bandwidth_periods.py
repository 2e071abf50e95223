"""OS direct-boot command line; bandwidth counted per billing period from interface counters

Revision ID: 3c9e41d07b21
Revises: df307f934a7e
Create Date: 2026-11-26 04:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3c9e41d07b21"
down_revision = "df307f934a7e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operating_systems", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cmdline", sa.Text(), nullable=True))

    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("network_counter_bytes", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("bandwidth_period_bytes", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("bandwidth_period", sa.String(length=7), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_column("bandwidth_period")
        batch_op.drop_column("bandwidth_period_bytes")
        batch_op.drop_column("network_counter_bytes")

    with op.batch_alter_table("operating_systems", schema=None) as batch_op:
        batch_op.drop_column("cmdline")
