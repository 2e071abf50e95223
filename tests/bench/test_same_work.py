"""The benchmark's same-work reference renders the bodies vpsorg's schemas render.

The benchmark checks the two live servers' bytes before it measures; this catches a schema change
(a field added to ServerDetail or ServerSummary) without a database or a server.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

orjson = pytest.importorskip("orjson")

from bench import datasets, same_work  # noqa: E402
from vpsorg.catalog.models import OperatingSystem, Plan  # noqa: E402
from vpsorg.servers.models import Server  # noqa: E402
from vpsorg.servers.schemas import ServerDetail, ServerSummary  # noqa: E402

PLAN = Plan(
    id=2, name="Performance VPS", vcpus=4, memory_mb=8192, storage_gb=160, bandwidth_gb=4096
)
OS = OperatingSystem(id=5, name="Ubuntu 22.04 LTS", slug="ubuntu-22-04")


def server(status: str, provisioned: bool) -> Server:
    return Server(
        id=5000,
        account_id=1,
        name="bench-10k-04999",
        hostname="bench-10k-04999.example.com",
        status=status,
        location_code="us-east",
        plan_id=PLAN.id,
        os_id=OS.id,
        plan=PLAN,
        os=OS,
        backups_enabled=True,
        ipv4_address="10.0.19.138",
        ipv6_address="2001:db8:2::1389",
        provisioned_at=datetime(2026, 11, 27, 21, 0, 0, 250_000) if provisioned else None,
        cpu_percent=49.9,
        memory_used_mb=903,
        disk_used_gb=39,
        bandwidth_used_gb=903,
        created_at=datetime(2026, 11, 27, 21, 0, 0, 999_999),
        updated_at=datetime(2026, 11, 27, 21, 5, 7, 1),
    )


def row(s: Server) -> dict[str, Any]:
    """What same_work's query returns for the server."""
    columns = {c: getattr(s, c) for c in Server.__table__.columns.keys()}  # noqa: SIM118
    return {
        **columns,
        "plan_id": PLAN.id,
        "plan_name": PLAN.name,
        "vcpus": PLAN.vcpus,
        "memory_mb": PLAN.memory_mb,
        "storage_gb": PLAN.storage_gb,
        "bandwidth_gb": PLAN.bandwidth_gb,
        "os_id": OS.id,
        "os_name": OS.name,
    }


@pytest.mark.parametrize(
    ("status", "provisioned"), [("active", True), ("stopped", True), ("provisioning", False)]
)
def test_detail_and_summary_bodies_match_the_schemas(status: str, provisioned: bool) -> None:
    s = server(status, provisioned)
    expected_detail = ServerDetail.from_server(s).model_dump(mode="json")
    expected_summary = ServerSummary.from_server(s).model_dump(mode="json")
    assert json.loads(orjson.dumps(same_work.detail(row(s)))) == expected_detail
    assert json.loads(orjson.dumps(same_work.summary(row(s)))) == expected_summary
    assert list(same_work.detail(row(s))) == list(expected_detail)  # the same order of keys


def test_dataset_offsets_skip_the_gateway() -> None:
    assert list(datasets._offsets(1, 1, 3)) == [2, 3, 4]
    assert list(datasets._offsets(5, 1, 2)) == [5, 6]
