"""The SDK against a real ``vpsorg serve``: every resource method, waits, pages, errors."""

from __future__ import annotations

import base64
import os
import struct
import time
from datetime import datetime

import pytest
from support import Installation

from vpsorg_client import (
    ActionFailed,
    ActionStatus,
    AsyncClient,
    Backup,
    BackupKind,
    BackupStatus,
    Client,
    Conflict,
    InsufficientCredits,
    InvalidParameters,
    InvalidState,
    NotAuthenticated,
    NotFound,
    ServerStatus,
    TokenScope,
)


def public_key() -> str:
    """A fresh, well-formed ed25519 public key (random bytes are a valid key's shape)."""
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} test@example"


def new_server(client: Client, name: str) -> int:
    created = client.servers.create(name=name, plan_id=3, os_id=1, location="us-east")
    created.action.wait(timeout=30)
    return created.server.id


def test_catalog_lists_are_typed(client: Client) -> None:
    plans = client.plans.list()
    images = client.os_images.list()
    locations = client.locations.list()
    assert plans and images and locations
    assert isinstance(plans[0].price_hourly, float) and plans[0].vcpus >= 1
    assert any(image.slug for image in images)
    assert "us-east" in {location.code for location in locations}


def test_server_lifecycle(client: Client) -> None:
    created = client.servers.create(
        name="life-1", plan_id=3, os_id=1, location="us-east", hostname="life.example.com"
    )
    assert created.server.status is ServerStatus.PROVISIONING
    assert isinstance(created.server.created_at, datetime) and created.server.created_at.tzinfo
    assert created.message and created.action.command == "create"

    done = created.action.wait(timeout=30)
    assert done.status is ActionStatus.SUCCESS and done.finished_at is not None

    server = client.servers.get(created.server.id)
    assert server.status is ServerStatus.ACTIVE and server.ip_address
    assert server.resource_usage is not None and server.backups_enabled is False

    assert client.servers.update(server.id, name="life-2").name == "life-2"
    replaced = client.servers.replace(
        server.id, name="life-3", hostname="three.example.com", backups_enabled=True
    )
    assert (replaced.name, replaced.hostname, replaced.backups_enabled) == (
        "life-3",
        "three.example.com",
        True,
    )
    assert server.id in {s.id for s in client.servers.list(status=ServerStatus.ACTIVE)}
    assert server.id in {s.id for s in client.servers.list(location="us-east")}

    stop = client.servers.stop(server.id)
    assert stop.command == "stop" and not stop.finished
    assert server.wait_until(ServerStatus.STOPPED, timeout=30).status is ServerStatus.STOPPED

    client.servers.start(server.id).wait(timeout=30)
    reboot = client.servers.reboot(server.id)
    assert reboot.wait(timeout=30).status is ActionStatus.SUCCESS
    assert client.servers.get(server.id).status is ServerStatus.ACTIVE

    history = list(client.servers.actions(server.id))
    assert [a.command for a in history] == ["reboot", "start", "stop", "create"]
    assert client.actions.get(reboot.id).status is ActionStatus.SUCCESS
    assert {a.id for a in client.actions.list(ids=[stop.id, reboot.id])} == {stop.id, reboot.id}

    client.servers.delete(server.id)
    with pytest.raises(NotFound):
        client.servers.get(server.id)


def test_action_wait_returns_when_the_action_finishes(counting_client) -> None:  # type: ignore[no-untyped-def]
    client, transport = counting_client()
    created = client.servers.create(name="poll-1", plan_id=3, os_id=1, location="us-east")
    transport.calls.clear()
    started = time.monotonic()
    action = created.action.wait(timeout=30)
    elapsed = time.monotonic() - started
    # One long-poll request (?wait=30) that the API answered when the action finished: not
    # a loop of short requests, and not a sleep: the simulator takes ~0.2-0.6 s to create.
    polls = [call for call in transport.calls if call[1] == f"/api/v1/actions/{action.id}/"]
    assert len(polls) == 1 and polls[0][2].startswith("wait=30")
    assert action.status is ActionStatus.SUCCESS
    assert elapsed < 5.0
    client.servers.delete(created.server.id)


def test_wait_until_fails_fast_when_nothing_can_change_the_status(client: Client) -> None:
    server_id = new_server(client, "idle-1")
    with pytest.raises(Exception, match="no action is running"):
        client.servers.wait_until(server_id, ServerStatus.STOPPED, timeout=10)
    client.servers.delete(server_id)


def test_failed_action_raises(client: Client, installation: Installation) -> None:
    server_id = new_server(client, "fail-1")
    installation.fail_next("stop", server_id, "disk on fire")
    with pytest.raises(ActionFailed, match="disk on fire") as failure:
        client.servers.stop(server_id).wait(timeout=30)
    assert failure.value.action.status is ActionStatus.ERROR  # type: ignore[attr-defined]
    client.servers.delete(server_id)


def test_lists_walk_every_page(counting_client) -> None:  # type: ignore[no-untyped-def]
    client, transport = counting_client()
    ids = [new_server(client, f"page-{n}") for n in range(3)]
    transport.calls.clear()
    listed = [server.id for server in client.servers.list(per_page=1)]
    assert set(ids) <= set(listed) and len(listed) == len(set(listed))
    pages = [call for call in transport.calls if call[1] == "/api/v1/servers/"]
    assert len(pages) == len(listed) >= 3

    events = list(client.events.list(per_page=2))
    assert len(events) >= 6 and all(e.request_id for e in events)
    ledger = list(client.account.ledger(per_page=2))
    assert len(ledger) >= 3 and all(isinstance(e.amount, float) for e in ledger)
    actions = list(client.actions.list(per_page=2))
    assert len(actions) >= 3
    for server_id in ids:
        client.servers.delete(server_id)


def test_account(client: Client) -> None:
    account = client.account.get()
    assert account.balance > 0 and account.servers_limit >= 1
    assert isinstance(account.created_at, datetime)


def test_ssh_keys(client: Client) -> None:
    key = client.ssh_keys.create(name="laptop", public_key=public_key())
    assert key.fingerprint and key.id in {k.id for k in client.ssh_keys.list()}
    assert client.ssh_keys.get(key.id).public_key == key.public_key
    with pytest.raises(Conflict):
        client.ssh_keys.create(name="laptop", public_key=key.public_key)
    client.ssh_keys.delete(key.id)
    with pytest.raises(NotFound):
        client.ssh_keys.get(key.id)


def test_tokens(client: Client, api_url: str) -> None:
    created = client.tokens.create(name="ci", scope=TokenScope.READ, expires_in=3600)
    assert created.token and created.scope is TokenScope.READ and created.expires_at
    assert created.id in {t.id for t in client.tokens.list(per_page=1)}
    with Client(token=created.token, base_url=api_url) as reader:
        assert reader.account.get().id == client.account.get().id
        client.tokens.revoke(created.id)
        with pytest.raises(NotAuthenticated):
            reader.account.get()


def test_errors_carry_status_code_and_request_id(client: Client) -> None:
    with pytest.raises(NotFound) as missing:
        client.servers.get(999_999)
    error = missing.value
    assert (error.status, error.code) == (404, "not_found")
    assert error.request_id and len(error.request_id) >= 16
    assert error.request_id in str(error)

    with pytest.raises(InvalidParameters) as invalid:
        client.servers.create(name="bad name", plan_id=99, os_id=1, location="us-east")
    assert invalid.value.status == 400
    assert set(invalid.value.errors) == {"name", "plan_id"}

    server_id = new_server(client, "state-1")
    with pytest.raises(InvalidState) as state:
        client.servers.start(server_id)
    assert state.value.code == "invalid_state"
    client.servers.delete(server_id)


def test_snapshot_restore_delete(client: Client) -> None:
    server_id = new_server(client, "snap-1")
    assert list(client.backups.list(server_id)) == []

    created = client.backups.create_snapshot(server_id, name="before-upgrade")
    assert created.backup.kind is BackupKind.SNAPSHOT
    assert created.backup.status is BackupStatus.CREATING
    assert created.action.command == "snapshot" and created.action.server_id == server_id
    assert created.to_dict()["backup"]["name"] == "before-upgrade"
    assert created.action.wait(timeout=30).status is ActionStatus.SUCCESS

    [backup] = client.backups.list(server_id)
    assert isinstance(backup, Backup) and backup.id == created.backup.id
    assert backup.status is BackupStatus.AVAILABLE and backup.kind is BackupKind.SNAPSHOT
    assert backup.name == "before-upgrade" and backup.size_gb >= 0
    assert backup.created_at.tzinfo is not None

    restore = client.backups.restore(server_id, backup.id)
    assert restore.command == "restore" and not restore.finished
    assert restore.wait(timeout=30).status is ActionStatus.SUCCESS
    assert client.servers.get(server_id).status is ServerStatus.ACTIVE

    with pytest.raises(InvalidParameters) as unknown:
        client.backups.restore(server_id, 999999)
    assert "backup_id" in unknown.value.errors

    client.backups.delete(server_id, backup.id)
    assert list(client.backups.list(server_id)) == []
    with pytest.raises(NotFound):
        client.backups.delete(server_id, backup.id)
    client.servers.delete(server_id)


def test_backups_list_walks_every_page(counting_client) -> None:  # type: ignore[no-untyped-def]
    client, transport = counting_client()
    server_id = new_server(client, "snap-pages")
    made = [client.backups.create_snapshot(server_id, name=f"s{i}") for i in range(3)]
    for creation in made:
        creation.action.wait(timeout=30)
    transport.calls.clear()
    listed = list(client.backups.list(server_id, per_page=2))
    assert [b.id for b in listed] == [c.backup.id for c in made]  # oldest first
    assert len(transport.calls) == 2
    client.servers.delete(server_id)


def test_insufficient_credits(broke_token: str, api_url: str) -> None:
    client = Client(token=broke_token, base_url=api_url)
    with client, pytest.raises(InsufficientCredits) as refused:
        client.servers.create(name="broke-1", plan_id=1, os_id=1, location="us-east")
    assert refused.value.status == 402 and refused.value.request_id


def test_bad_token(api_url: str) -> None:
    client = Client(token="vps_nope", base_url=api_url + "/api/v1/")  # the prefix is dropped
    with client, pytest.raises(NotAuthenticated) as refused:
        client.account.get()
    assert refused.value.status == 401


async def test_async_client_covers_every_resource(api_url: str, token: str) -> None:
    async with AsyncClient(token=token, base_url=api_url) as client:
        assert await client.plans.list() and await client.os_images.list()
        assert await client.locations.list()
        created = await client.servers.create(
            name="async-1", plan_id=3, os_id=1, location="us-east"
        )
        assert (await created.action.wait_async(timeout=30)).status is ActionStatus.SUCCESS
        server = await client.servers.get(created.server.id)
        assert server.id in [s.id async for s in client.servers.list(per_page=1)]
        assert (await client.servers.update(server.id, hostname="a.example.com")).hostname
        await client.servers.replace(
            server.id, name="async-2", hostname="b.example.com", backups_enabled=False
        )
        await client.servers.stop(server.id)
        stopped = await server.wait_until_async(ServerStatus.STOPPED, timeout=30)
        assert stopped.status is ServerStatus.STOPPED
        await (await client.servers.start(server.id)).wait_async(timeout=30)
        await client.actions.wait((await client.servers.reboot(server.id)).id, timeout=30)
        history = [a async for a in client.servers.actions(server.id, per_page=2)]
        assert len(history) == 4
        assert (await client.actions.get(history[0].id)).id == history[0].id
        assert len([a async for a in client.actions.list(per_page=3)]) >= 4
        assert (await client.account.get()).servers_used >= 1
        assert [e async for e in client.account.ledger()]
        assert [e async for e in client.events.list(per_page=5)]

        key = await client.ssh_keys.create(name="async-key", public_key=public_key())
        assert (await client.ssh_keys.get(key.id)).id in {
            k.id for k in await client.ssh_keys.list()
        }
        await client.ssh_keys.delete(key.id)

        made = await client.tokens.create(name="async-token")
        assert made.id in {t.id async for t in client.tokens.list()}
        await client.tokens.revoke(made.id)

        snapshot = await client.backups.create_snapshot(server.id, name="async-snap")
        await snapshot.action.wait_async(timeout=30)
        [backup] = [b async for b in client.backups.list(server.id)]
        assert backup.status is BackupStatus.AVAILABLE
        restore = await client.backups.restore(server.id, backup.id)
        assert (await restore.wait_async(timeout=30)).status is ActionStatus.SUCCESS
        await client.backups.delete(server.id, backup.id)
        assert [b async for b in client.backups.list(server.id)] == []

        await client.servers.delete(server.id)
        with pytest.raises(NotFound):
            await client.servers.get(server.id)
