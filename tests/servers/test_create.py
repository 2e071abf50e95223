"""What a create reads and writes, and the database's last word on addresses."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from tests.factories import SERVER
from vpsorg.db import transaction
from vpsorg.locations.models import AddressRange, Location


@pytest.fixture
def settings(settings):
    """No embedded worker: the statements seen are the request's own."""
    return settings.model_copy(update={"embedded_worker": False})


def record_statements(app) -> list[str]:
    statements: list[str] = []

    @event.listens_for(app.state.runtime.engine.sync_engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    return statements


def loading(table: str, statements: list[str]) -> list[str]:
    """The statements that load rows of ``table`` (all of these tables have a name)."""
    return [s for s in statements if s.startswith("SELECT") and f"{table}.name" in s]


async def test_a_create_reads_each_reference_once(app, client, user):
    statements = record_statements(app)

    response = await client.post("/api/v1/servers/", json=SERVER, headers=user.headers)

    assert response.status_code == 201, response.text
    for table in ("plans", "operating_systems", "locations", "ssh_keys"):
        assert len(loading(table, statements)) == 1, (table, statements)
    # Authentication, then the row lock.
    assert len(loading("accounts", statements)) == 2, statements
    assert not [s for s in statements if "SAVEPOINT" in s]


async def test_a_rejected_create_names_unknown_references_from_one_lookup(app, client, user):
    statements = record_statements(app)
    body = {**SERVER, "name": "-bad-", "plan_id": 999, "location": "mars", "ssh_key_id": 7}

    response = await client.post("/api/v1/servers/", json=body, headers=user.headers)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"name", "plan_id", "location", "ssh_key_id"}
    assert len(loading("plans", statements)) == 1, statements


async def test_an_address_held_elsewhere_is_refused_by_the_database(app, client, user):
    # A location whose range overlaps us-west's (`locations add-range` refuses that; a direct
    # write does not): its lock does not serialize with us-west's, and the unique columns
    # have the last word.
    async with transaction(app.state.runtime.sessions) as session:
        session.add(Location(code="us-west-2", name="Overlap"))
        await session.flush()
        session.add_all([
            AddressRange(location_code="us-west-2", family=4, cidr="203.0.113.0/25",
                         gateway="203.0.113.1"),
            AddressRange(location_code="us-west-2", family=6, cidr="2001:db8:99::/48",
                         gateway="2001:db8:99::1"),
        ])  # fmt: skip
    elsewhere = await client.post(
        "/api/v1/servers/", json={**SERVER, "location": "us-west-2"}, headers=user.headers
    )
    assert elsewhere.status_code == 201, elsewhere.text

    refused = await client.post("/api/v1/servers/", json=SERVER, headers=user.headers)

    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "capacity_unavailable"
    listing = await client.get("/api/v1/servers/", headers=user.headers)
    assert [s["location"] for s in listing.json()["results"]] == ["us-west-2"]
