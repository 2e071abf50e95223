"""Every change needs the session's CSRF token; each rendered form is done at most once; a
user's changes are rate-limited."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.panel.conftest import PanelUser, form_fields, submit

SERVER_FORM = {"name": "web-1", "plan_id": "1", "os_id": "5", "location": "us-west"}


async def server_count(client: httpx.AsyncClient, user: PanelUser) -> int:
    response = await client.get("/api/v1/servers/", headers=user.api.headers)
    count: int = response.json()["count"]
    return count


async def test_a_post_without_the_csrf_token_is_refused(
    logged_in: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    page = await logged_in.get("/servers/new")
    fields = {**form_fields(page.text, "/servers/new"), **SERVER_FORM}
    del fields["csrf_token"]

    missing = await logged_in.post("/servers/new", data=fields)
    forged = await logged_in.post("/servers/new", data={**fields, "csrf_token": "0" * 64})

    assert missing.status_code == forged.status_code == 403
    assert "security token" in missing.text
    assert await server_count(logged_in, panel_user) == 0


async def test_another_sessions_csrf_token_is_refused(
    logged_in: httpx.AsyncClient, panel_user: PanelUser, app: object
) -> None:
    from tests.panel.conftest import login

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await login(other, panel_user.email, panel_user.password)
        theirs = form_fields((await other.get("/servers/new")).text, "/servers/new")
    mine = form_fields((await logged_in.get("/servers/new")).text, "/servers/new")

    response = await logged_in.post(
        "/servers/new", data={**mine, "csrf_token": theirs["csrf_token"], **SERVER_FORM}
    )
    assert response.status_code == 403


async def test_a_double_submit_creates_one_server_and_shows_it_twice(
    logged_in: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    page = await logged_in.get("/servers/new")
    fields = {**form_fields(page.text, "/servers/new"), **SERVER_FORM}

    first = await logged_in.post("/servers/new", data=fields)
    second = await logged_in.post("/servers/new", data=fields)

    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert first.headers["location"].startswith("/servers/")
    assert await server_count(logged_in, panel_user) == 1


async def test_concurrent_submits_of_one_form_create_one_server(
    logged_in: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    page = await logged_in.get("/servers/new")
    fields = {**form_fields(page.text, "/servers/new"), **SERVER_FORM}

    responses = await asyncio.gather(
        *(logged_in.post("/servers/new", data=fields) for _ in range(4))
    )

    assert {r.status_code for r in responses} == {303}
    assert len({r.headers["location"] for r in responses}) == 1
    assert await server_count(logged_in, panel_user) == 1


async def test_a_refused_form_may_be_corrected_and_sent_again(
    logged_in: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    page = await logged_in.get("/servers/new")
    fields = {**form_fields(page.text, "/servers/new"), **SERVER_FORM}

    refused = await logged_in.post("/servers/new", data={**fields, "name": "-bad-"})
    accepted = await logged_in.post("/servers/new", data=fields)  # the same token

    assert refused.status_code == 400
    assert accepted.status_code == 303
    assert await server_count(logged_in, panel_user) == 1


async def test_a_form_without_its_one_time_token_is_refused(
    logged_in: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    page = await logged_in.get("/servers/new")
    fields = {**form_fields(page.text, "/servers/new"), **SERVER_FORM}
    del fields["form_token"]

    response = await logged_in.post("/servers/new", data=fields)

    assert response.status_code == 400
    assert await server_count(logged_in, panel_user) == 0


@pytest.mark.panel(panel_user_rate_limits="2/minute")
async def test_a_users_changes_are_rate_limited(
    logged_in: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    for name in ("one", "two"):
        response = await submit(logged_in, "/ssh-keys", "/ssh-keys", name=name, public_key="x")
        assert response.status_code == 400  # a bad key, but counted

    refused = await submit(logged_in, "/ssh-keys", "/ssh-keys", name="three", public_key="x")

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await logged_in.get("/ssh-keys")).status_code == 200  # reading goes on
