"""Snapshots are billed by the meter per GB-hour, each hour once, none while suspended."""

from __future__ import annotations

from sqlalchemy import select

from tests.backups.conftest import backups_of, snapshot
from tests.billing.conftest import frozen, ledger_and_balance  # noqa: F401 - a fixture
from vpsorg.billing import service as billing
from vpsorg.billing.metering import charge_due_hours
from vpsorg.billing.models import SnapshotCharge
from vpsorg.db import transaction

PRICE = 20  # micro-credits per GB-hour: VPSORG_SNAPSHOT_PRICE_GB_HOUR's default 0.00002


async def _charges(sessions, backup_id: int) -> list[tuple[int, int]]:
    async with transaction(sessions) as session:
        rows = await session.scalars(
            select(SnapshotCharge)
            .where(SnapshotCharge.backup_id == backup_id)
            .order_by(SnapshotCharge.hour)
        )
        return [(c.hour, c.amount_micros) for c in rows.all()]


async def test_snapshot_hours_are_charged_once_and_not_while_suspended(
    client,
    user,
    factory,
    app,
    frozen,  # noqa: F811
):
    sessions = app.state.runtime.sessions
    server = await factory.server(user, backups_enabled=False)
    taken = await snapshot(client, user, server["id"])
    [listed] = await backups_of(client, user, server["id"])
    size = listed["size_gb"]
    assert size >= 1
    hour = size * PRICE
    backup_id = taken["backup"]["id"]

    await charge_due_hours(sessions)
    await charge_due_hours(sessions)
    assert await _charges(sessions, backup_id) == [(0, hour)]
    frozen.advance(hours=3, minutes=30)
    await charge_due_hours(sessions)
    await charge_due_hours(sessions)
    assert await _charges(sessions, backup_id) == [(n, hour) for n in range(4)]
    ledger = (await client.get("/api/v1/account/credits/", headers=user.headers)).json()
    memos = [e["memo"] for e in ledger["results"] if e["memo"].startswith("snapshot")]
    assert memos == [
        f"snapshot {backup_id} (snap, {size} GB), hours 2-4",
        f"snapshot {backup_id} (snap, {size} GB), hour 1",
    ]

    async with transaction(sessions) as session:
        await billing.suspend_account(session, user.account_id, "operator")
    frozen.advance(hours=5)
    await charge_due_hours(sessions)
    assert len(await _charges(sessions, backup_id)) == 4  # suspended: hours are free
    async with transaction(sessions) as session:
        assert await billing.unsuspend_account(session, user.account_id)
    # Lifting starts a new hour, paid at once; the five suspended hours stay free.
    assert await _charges(sessions, backup_id) == [(n, hour) for n in range(5)]
    total, balance = await ledger_and_balance(sessions, user.account_id)
    assert total == balance


async def test_a_deleted_snapshot_stops_costing(client, user, factory, app, frozen):  # noqa: F811
    sessions = app.state.runtime.sessions
    server = await factory.server(user, backups_enabled=False)
    backup = (await snapshot(client, user, server["id"]))["backup"]
    await charge_due_hours(sessions)
    frozen.advance(minutes=90)
    url = f"/api/v1/servers/{server['id']}/backups/{backup['id']}/"
    assert (await client.delete(url, headers=user.headers)).status_code == 204
    frozen.advance(hours=5)
    await charge_due_hours(sessions)
    assert [h for h, _ in await _charges(sessions, backup["id"])] == [0, 1]
