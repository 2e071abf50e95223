"""Server pages through their forms: create, power, rename, backups, delete; the status
feed; ownership; each change in the audit trail as the user."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from tests.factories import Factory
from tests.panel.conftest import PanelUser, form_fields, login, make_user, submit
from vpsorg.audit.models import AuditEvent
from vpsorg.db import transaction

SERVER_FORM = {"name": "web-1", "plan_id": "1", "os_id": "5", "location": "us-west"}


async def create(client: httpx.AsyncClient, **fields: str) -> int:
    response = await submit(client, "/servers/new", "/servers/new", **{**SERVER_FORM, **fields})
    assert response.status_code == 303, response.text
    return int(response.headers["location"].split("/")[2].partition("?")[0])


async def wait_for_status(client: httpx.AsyncClient, server_id: int, status: str) -> None:
    """What the page's script does: poll the feed until the server shows ``status``."""
    deadline = time.monotonic() + 10
    while True:
        feed = (await client.get("/panel/servers.json")).json()["servers"]
        current = next(s["status"] for s in feed if s["id"] == server_id)
        if current == status:
            return
        assert time.monotonic() < deadline, f"server {server_id} stayed {current}"
        await asyncio.sleep(0.02)


async def audit_events(app: FastAPI) -> list[AuditEvent]:
    async with transaction(app.state.runtime.sessions) as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


async def test_create_through_the_form(
    logged_in: httpx.AsyncClient, panel_user: PanelUser, app: FastAPI
) -> None:
    page = await logged_in.get("/servers/new")
    assert "Balance: <strong>100.00</strong>" in page.text
    assert "/hour" in page.text and "/month" in page.text  # prices beside the plans

    server_id = await create(
        logged_in, hostname="web1.example.com", backups_enabled="on", name="shop"
    )

    shown = await logged_in.get(f"/servers/{server_id}")
    assert shown.status_code == 200
    assert "shop" in shown.text and "web1.example.com" in shown.text
    api = await logged_in.get(f"/api/v1/servers/{server_id}/", headers=panel_user.api.headers)
    assert api.json()["backups_enabled"] is True
    assert api.json()["hostname"] == "web1.example.com"
    await wait_for_status(logged_in, server_id, "active")
    (event,) = [e for e in await audit_events(app) if e.path == "/servers/new"]
    assert (event.actor, event.user_id, event.account_id) == (
        "user",
        panel_user.user_id,
        panel_user.account_id,
    )
    assert event.resource == f"server:{server_id}"
    assert event.action_id is not None
    assert event.outcome == "success"
    # The account's own audit listing shows it too.
    listed = await logged_in.get("/api/v1/account/events/", headers=panel_user.api.headers)
    assert listed.status_code == 200, listed.text
    assert [e["actor"] for e in listed.json()["results"]] == ["user"]


async def test_create_errors_are_the_apis_shown_beside_their_fields(
    logged_in: httpx.AsyncClient, panel_user: PanelUser, app: FastAPI
) -> None:
    fields = {**SERVER_FORM, "name": "-bad-", "plan_id": "999", "hostname": "nodots"}
    page = await logged_in.get("/servers/new")
    response = await logged_in.post(
        "/servers/new", data={**form_fields(page.text, "/servers/new"), **fields}
    )
    api = await logged_in.post(
        "/api/v1/servers/",
        json={**SERVER_FORM, "plan_id": 999, "os_id": 5, "name": "-bad-", "hostname": "nodots"},
        headers=panel_user.api.headers,
    )

    assert response.status_code == 400
    for field, messages in api.json()["errors"].items():
        assert f'id="{field}-error"' in response.text, field
        for message in messages:
            assert message.replace("'", "&#39;") in response.text, message
    assert 'value="-bad-"' in response.text  # what was typed is kept
    (refused,) = [e for e in await audit_events(app) if e.path == "/servers/new"]
    assert (refused.outcome, refused.error_code, refused.user_id) == (
        "refused",
        "invalid_parameters",
        panel_user.user_id,
    )


async def test_a_short_balance_is_refused_above_the_form(
    app: FastAPI, factory: Factory, client: httpx.AsyncClient
) -> None:
    poor = await make_user(app.state.runtime, factory, "poor@example.com", credits=0)
    await login(client, poor.email, poor.password)

    response = await submit(client, "/servers/new", "/servers/new", **SERVER_FORM)

    assert response.status_code == 402
    assert 'class="form-error"' in response.text


async def test_the_list_and_the_feed_show_the_status_as_it_changes(
    logged_in: httpx.AsyncClient,
) -> None:
    server_id = await create(logged_in)

    listed = await logged_in.get("/")
    assert f'data-server-status="{server_id}"' in listed.text
    assert 'data-status-feed="/panel/servers.json"' in listed.text
    await wait_for_status(logged_in, server_id, "active")
    feed = (await logged_in.get("/panel/servers.json")).json()["servers"]
    assert feed == [
        {"id": server_id, "status": "active", "busy": False, "ip_address": feed[0]["ip_address"]}
    ]
    assert feed[0]["ip_address"]


async def test_power_rename_backups_and_delete_through_forms(
    logged_in: httpx.AsyncClient, panel_user: PanelUser, app: FastAPI
) -> None:
    server_id = await create(logged_in)
    page = f"/servers/{server_id}"
    await wait_for_status(logged_in, server_id, "active")

    started = await submit(logged_in, page, f"{page}/power/start")  # already running
    assert started.status_code == 400
    assert "already running" in started.text

    stopped = await submit(logged_in, page, f"{page}/power/stop")
    assert stopped.status_code == 303
    await wait_for_status(logged_in, server_id, "stopped")
    assert (await submit(logged_in, page, f"{page}/power/start")).status_code == 303
    await wait_for_status(logged_in, server_id, "active")
    assert (await submit(logged_in, page, f"{page}/power/reboot")).status_code == 303
    await wait_for_status(logged_in, server_id, "active")

    bad_name = await submit(logged_in, page, f"{page}/rename", name="no spaces", hostname="")
    assert bad_name.status_code == 400
    assert 'id="name-error"' in bad_name.text
    renamed = await submit(
        logged_in, page, f"{page}/rename", name="db-1", hostname="db.example.com"
    )
    assert renamed.status_code == 303
    on = await submit(logged_in, page, f"{page}/backups", backups_enabled="on")
    assert on.status_code == 303
    api = (
        await logged_in.get(f"/api/v1/servers/{server_id}/", headers=panel_user.api.headers)
    ).json()
    assert (api["name"], api["hostname"], api["backups_enabled"]) == (
        "db-1",
        "db.example.com",
        True,
    )
    off = await submit(logged_in, page, f"{page}/backups")
    assert off.status_code == 303

    history = await logged_in.get(page)
    for command in ("create", "stop", "start", "reboot"):
        assert f'data-label="Action">{command}<' in history.text

    wrong = await submit(logged_in, page, f"{page}/delete", confirm_name="web-1")
    assert wrong.status_code == 400
    assert 'id="confirm_name-error"' in wrong.text
    deleted = await submit(logged_in, page, f"{page}/delete", confirm_name="db-1")
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/?done=deleted"
    assert (await logged_in.get(page)).status_code == 404

    paths = [e.path for e in await audit_events(app) if e.actor == "user"]
    assert f"{page}/power/stop" in paths and f"{page}/delete" in paths
    assert all(
        e.user_id == panel_user.user_id for e in await audit_events(app) if e.actor == "user"
    )


async def test_a_user_never_sees_another_accounts_server(
    logged_in: httpx.AsyncClient, app: FastAPI, factory: Factory
) -> None:
    theirs: dict[str, Any] = await factory.server(await factory.account(), wait=None)
    page = f"/servers/{theirs['id']}"
    mine = (await logged_in.get("/servers/new")).text

    assert (await logged_in.get(page)).status_code == 404
    assert theirs["name"] not in (await logged_in.get("/")).text
    assert (await logged_in.get("/panel/servers.json")).json() == {"servers": []}
    csrf = form_fields(mine, "/servers/new")
    for action in ("power/stop", "rename", "backups", "delete"):
        response = await logged_in.post(
            f"{page}/{action}", data={**csrf, "name": "x", "confirm_name": theirs["name"]}
        )
        assert response.status_code == 404, action
    assert (await logged_in.get(f"{page}")).status_code == 404


async def test_unknown_power_commands_and_ids_are_not_found(logged_in: httpx.AsyncClient) -> None:
    server_id = await create(logged_in)
    csrf = form_fields(
        (await logged_in.get(f"/servers/{server_id}")).text, f"/servers/{server_id}/rename"
    )

    assert (
        await logged_in.post(f"/servers/{server_id}/power/explode", data=csrf)
    ).status_code == 404
    assert (await logged_in.get("/servers/999999")).status_code == 404
