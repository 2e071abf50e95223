"""Tokens with a scope (read or write), an optional expiry, and when they were last used

Revision ID: c4d8f2a6e913
Revises: a7c3e9d1b254
Create Date: 2026-11-28 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c4d8f2a6e913"
down_revision = "a7c3e9d1b254"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=8), nullable=False, server_default="write")
        )
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("scope")
