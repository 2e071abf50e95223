"""Performance: an index that makes an account's deep pages of servers cheap

Revision ID: a8c0e2f4b6d9
Revises: f3b5d7e9a1c4
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a8c0e2f4b6d9"
down_revision = "f3b5d7e9a1c4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The list walks an account's servers in id order: (account_id, id) serves page 200 and a
    # cursor from the index alone instead of sorting every one of the account's rows. Partial:
    # only live servers, so the count and the page's ids skip deleted ones without reading
    # the table (PostgreSQL's index-only scan).
    live = sa.text("deleted_at IS NULL")
    op.create_index(
        "ix_servers_account_id_id",
        "servers",
        ["account_id", "id"],
        postgresql_where=live,
        sqlite_where=live,
    )


def downgrade() -> None:
    op.drop_index("ix_servers_account_id_id", table_name="servers")
