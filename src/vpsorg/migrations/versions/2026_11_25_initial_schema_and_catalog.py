"""initial schema and catalog

Revision ID: 8a2a2528fb43
Revises:
Create Date: 2026-11-25 04:51:26.163071
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "8a2a2528fb43"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("balance_micros", sa.BigInteger(), nullable=False),
        sa.Column("servers_limit", sa.Integer(), nullable=False),
        sa.Column("suspended_at", sa.DateTime(), nullable=True),
        sa.Column("suspended_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "locations",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("ipv4_pool", sa.String(length=64), nullable=False),
        sa.Column("ipv6_pool", sa.String(length=64), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_locations")),
    )
    op.create_table(
        "operating_systems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("image", sa.Text(), nullable=True),
        sa.Column("kernel", sa.Text(), nullable=True),
        sa.Column("initrd", sa.Text(), nullable=True),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operating_systems")),
        sa.UniqueConstraint("slug", name=op.f("uq_operating_systems_slug")),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("storage_gb", sa.Integer(), nullable=False),
        sa.Column("bandwidth_gb", sa.Integer(), nullable=False),
        sa.Column("price_hourly_micros", sa.BigInteger(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_api_tokens_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_account_id"), ["account_id"], unique=False)

    op.create_table(
        "credit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_micros", sa.BigInteger(), nullable=False),
        sa.Column("memo", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_credit_entries_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_entries")),
    )
    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credit_entries_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "ssh_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_ssh_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ssh_keys")),
    )
    with op.batch_alter_table("ssh_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ssh_keys_account_id"), ["account_id"], unique=False)

    op.create_table(
        "servers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("location_code", sa.String(length=32), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("os_id", sa.Integer(), nullable=False),
        sa.Column("ssh_key_id", sa.Integer(), nullable=True),
        sa.Column("backups_enabled", sa.Boolean(), nullable=False),
        sa.Column("ipv4_address", sa.String(length=45), nullable=True),
        sa.Column("ipv6_address", sa.String(length=45), nullable=True),
        sa.Column("provisioned_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("memory_used_mb", sa.Integer(), nullable=False),
        sa.Column("disk_used_gb", sa.Integer(), nullable=False),
        sa.Column("bandwidth_used_gb", sa.Integer(), nullable=False),
        sa.Column("usage_sampled_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_servers_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["location_code"], ["locations.code"], name=op.f("fk_servers_location_code_locations")
        ),
        sa.ForeignKeyConstraint(
            ["os_id"], ["operating_systems.id"], name=op.f("fk_servers_os_id_operating_systems")
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_servers_plan_id_plans")),
        sa.ForeignKeyConstraint(
            ["ssh_key_id"],
            ["ssh_keys.id"],
            name=op.f("fk_servers_ssh_key_id_ssh_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
        sa.UniqueConstraint("ipv4_address", name=op.f("uq_servers_ipv4_address")),
        sa.UniqueConstraint("ipv6_address", name=op.f("uq_servers_ipv6_address")),
    )
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.create_index("ix_servers_account_status", ["account_id", "status"], unique=False)

    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("command", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_actions_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_actions_server_id_servers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_actions_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_actions_server_id_id", ["server_id", "id"], unique=False)
        batch_op.create_index("ix_actions_status_id", ["status", "id"], unique=False)

    seed_catalog()


def downgrade() -> None:
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index("ix_actions_status_id")
        batch_op.drop_index("ix_actions_server_id_id")
        batch_op.drop_index(batch_op.f("ix_actions_account_id"))

    op.drop_table("actions")
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_index("ix_servers_account_status")

    op.drop_table("servers")
    with op.batch_alter_table("ssh_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ssh_keys_account_id"))

    op.drop_table("ssh_keys")
    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_entries_account_id"))

    op.drop_table("credit_entries")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_account_id"))

    op.drop_table("api_tokens")
    op.drop_table("plans")
    op.drop_table("operating_systems")
    op.drop_table("locations")
    op.drop_table("accounts")


# The default catalog. Plan 1/2, OS 3/5 and us-west/us-east are the ones the API reference's
# examples use; addresses come from the documentation ranges (RFC 5737, RFC 3849).
PLANS = [
    # id, name, vcpus, memory MB, storage GB, bandwidth GB, price per hour (micro-credits)
    (1, "Standard VPS", 2, 4096, 80, 2048, 30_000),
    (2, "Performance VPS", 4, 8192, 160, 4096, 60_000),
    (3, "Starter VPS", 1, 1024, 25, 1024, 7_500),
    (4, "Basic VPS", 1, 2048, 50, 2048, 15_000),
    (5, "High Memory VPS", 4, 16384, 200, 5120, 110_000),
    (6, "Dedicated CPU VPS", 8, 16384, 320, 6144, 180_000),
]
OPERATING_SYSTEMS = [
    (1, "Debian 11", "debian-11"),
    (2, "Ubuntu 20.04 LTS", "ubuntu-20-04"),
    (3, "Debian 12", "debian-12"),
    (4, "Rocky Linux 9", "rocky-9"),
    (5, "Ubuntu 22.04 LTS", "ubuntu-22-04"),
    (6, "Ubuntu 24.04 LTS", "ubuntu-24-04"),
    (7, "AlmaLinux 9", "almalinux-9"),
]
LOCATIONS = [
    ("us-west", "US West (San Jose)", "203.0.113.0/24", "2001:db8:1::/48"),
    ("us-east", "US East (New York)", "198.51.100.0/24", "2001:db8:2::/48"),
    ("eu-central", "EU Central (Frankfurt)", "192.0.2.0/25", "2001:db8:3::/48"),
    ("ap-southeast", "Asia Pacific (Singapore)", "192.0.2.128/25", "2001:db8:4::/48"),
]


def seed_catalog() -> None:
    plans = sa.table(
        "plans", sa.column("id", sa.Integer), sa.column("name", sa.String),
        sa.column("vcpus", sa.Integer), sa.column("memory_mb", sa.Integer),
        sa.column("storage_gb", sa.Integer), sa.column("bandwidth_gb", sa.Integer),
        sa.column("price_hourly_micros", sa.BigInteger), sa.column("available", sa.Boolean),
    )  # fmt: skip
    op.bulk_insert(
        plans,
        [
            {
                "id": i,
                "name": n,
                "vcpus": c,
                "memory_mb": m,
                "storage_gb": s,
                "bandwidth_gb": b,
                "price_hourly_micros": p,
                "available": True,
            }
            for i, n, c, m, s, b, p in PLANS
        ],
    )
    systems = sa.table(
        "operating_systems", sa.column("id", sa.Integer), sa.column("name", sa.String),
        sa.column("slug", sa.String), sa.column("available", sa.Boolean),
    )  # fmt: skip
    op.bulk_insert(
        systems,
        [{"id": i, "name": n, "slug": s, "available": True} for i, n, s in OPERATING_SYSTEMS],
    )
    locations = sa.table(
        "locations", sa.column("code", sa.String), sa.column("name", sa.String),
        sa.column("ipv4_pool", sa.String), sa.column("ipv6_pool", sa.String),
        sa.column("available", sa.Boolean),
    )  # fmt: skip
    op.bulk_insert(
        locations,
        [
            {"code": c, "name": n, "ipv4_pool": v4, "ipv6_pool": v6, "available": True}
            for c, n, v4, v6 in LOCATIONS
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in ("plans", "operating_systems"):
            op.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
