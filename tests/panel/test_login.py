"""Logging in and out: sessions in a cookie, their expiry, refused logins and their limit."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.factories import Factory
from tests.panel.conftest import PanelUser, form_fields, login, make_user, submit
from vpsorg import clock
from vpsorg.db import transaction
from vpsorg.users import service as users
from vpsorg.users.models import PanelSession


async def test_the_panel_redirects_to_login_without_a_session(client: httpx.AsyncClient) -> None:
    for path in ["/", "/servers/new", "/servers/1", "/ssh-keys", "/tokens", "/account"]:
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/login"
    feed = await client.get("/panel/servers.json")
    assert feed.status_code == 401
    assert feed.json()["code"] == "not_authenticated"


async def test_login_sets_a_strict_http_only_cookie_and_shows_the_servers(
    client: httpx.AsyncClient, panel_user: PanelUser, app: FastAPI
) -> None:
    response = await login(client, panel_user.email.upper(), panel_user.password)

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("vpsorg_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    page = await client.get("/")
    assert page.status_code == 200
    assert panel_user.email in page.text
    # Only the id's hash is stored.
    raw = client.cookies["vpsorg_session"]
    async with transaction(app.state.runtime.sessions) as session:
        stored = (await session.scalars(select(PanelSession.id_hash))).all()
    assert stored == [users.hash_secret(raw)]


async def test_the_cookie_is_secure_over_https(app: FastAPI, panel_user: PanelUser) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as https:
        response = await login(https, panel_user.email, panel_user.password)
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize("email", ["ana@example.com", "nobody@example.com"])
async def test_a_wrong_password_or_unknown_email_gets_the_same_refusal(
    client: httpx.AsyncClient, panel_user: PanelUser, email: str
) -> None:
    response = await login(client, email, "not the password")

    assert response.status_code == 400
    assert "Wrong email or password." in response.text
    assert 'id="password-error"' in response.text  # beside the field
    assert "vpsorg_session" not in client.cookies
    assert (await client.get("/")).status_code == 303


async def test_a_login_without_its_form_token_is_refused(
    client: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    response = await client.post(
        "/login", data={"email": panel_user.email, "password": panel_user.password}
    )
    assert response.status_code == 400
    assert "vpsorg_session" not in client.cookies


@pytest.mark.panel(panel_login_rate_limits="3/minute")
async def test_logins_are_rate_limited_per_address_and_email(
    client: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    for _ in range(3):
        assert (await login(client, panel_user.email, "wrong password!")).status_code == 400

    refused = await login(client, panel_user.email, panel_user.password)  # even the right one

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many attempts" in refused.text
    # Another email from the same address is counted apart.
    assert (await login(client, "other@example.com", "wrong password!")).status_code == 400


async def test_logout_ends_the_session_on_the_server(
    logged_in: httpx.AsyncClient, app: FastAPI
) -> None:
    stolen = logged_in.cookies["vpsorg_session"]

    response = await submit(logged_in, "/", "/logout")

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    # A copy of the cookie kept from before is worth nothing now.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        other.cookies.set("vpsorg_session", stolen)
        assert (await other.get("/")).status_code == 303


async def test_logout_needs_the_csrf_token(logged_in: httpx.AsyncClient) -> None:
    response = await logged_in.post("/logout", data={})
    assert response.status_code == 403
    assert (await logged_in.get("/")).status_code == 200


@pytest.mark.panel(panel_session_idle_minutes=30, panel_session_max_hours=2)
async def test_a_session_ends_after_its_idle_time_and_at_its_absolute_expiry(
    logged_in: httpx.AsyncClient,
) -> None:
    start = clock.utcnow()
    moments: list[datetime] = []

    def at(minutes: float) -> None:
        moments.append(start + timedelta(minutes=minutes))
        clock.set_clock(lambda: moments[-1])

    try:
        # Used every 20 minutes, it stays alive past the idle time...
        for minutes in (20, 40, 60, 80, 100):
            at(minutes)
            assert (await logged_in.get("/")).status_code == 200, minutes
        # ...but not past its absolute expiry, however busy.
        at(121)
        assert (await logged_in.get("/")).status_code == 303
    finally:
        clock.set_clock(None)


@pytest.mark.panel(panel_session_idle_minutes=30)
async def test_an_idle_session_ends(logged_in: httpx.AsyncClient) -> None:
    later = clock.utcnow() + timedelta(minutes=31)
    clock.set_clock(lambda: later)
    try:
        assert (await logged_in.get("/")).status_code == 303
    finally:
        clock.set_clock(None)


async def test_a_disabled_user_is_logged_out_and_cannot_log_in(
    logged_in: httpx.AsyncClient, panel_user: PanelUser, app: FastAPI
) -> None:
    async with transaction(app.state.runtime.sessions) as session:
        await users.disable_user(session, panel_user.email)

    assert (await logged_in.get("/")).status_code == 303
    response = await login(logged_in, panel_user.email, panel_user.password)
    assert response.status_code == 400
    assert "Wrong email or password." in response.text


async def test_the_api_never_reads_the_panel_cookie(
    logged_in: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    assert "vpsorg_session" in logged_in.cookies
    for path in ["/api/v1/servers/", "/api/v1/account/"]:
        response = await logged_in.get(path)
        assert response.status_code == 401, path
    created = await logged_in.post(
        "/api/v1/ssh-keys/", json={"name": "x", "public_key": "ssh-ed25519 AAAA"}
    )
    assert created.status_code == 401


async def test_the_api_still_refuses_form_bodies(
    client: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    response = await client.post(
        "/api/v1/ssh-keys/",
        data={"name": "x"},
        headers={"Authorization": f"Bearer {panel_user.api.token}"},
    )
    assert response.status_code == 415


async def test_a_user_changes_their_password_and_other_sessions_end(
    app: FastAPI, factory: Factory, client: httpx.AsyncClient
) -> None:
    user = await make_user(app.state.runtime, factory, "bo@example.com")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as phone:
        assert (await login(client, user.email, user.password)).status_code == 303
        assert (await login(phone, user.email, user.password)).status_code == 303

        wrong = await submit(
            client,
            "/password",
            "/password",
            current_password="nope nope nope",
            new_password="a new passphrase",
            confirm_password="a new passphrase",
        )
        assert wrong.status_code == 400
        assert 'id="current_password-error"' in wrong.text
        differ = await submit(
            client,
            "/password",
            "/password",
            current_password=user.password,
            new_password="a new passphrase",
            confirm_password="another one entirely",
        )
        assert differ.status_code == 400
        assert 'id="confirm_password-error"' in differ.text
        short = await submit(
            client,
            "/password",
            "/password",
            current_password=user.password,
            new_password="short",
            confirm_password="short",
        )
        assert short.status_code == 400
        assert 'id="new_password-error"' in short.text

        done = await submit(
            client,
            "/password",
            "/password",
            current_password=user.password,
            new_password="a new passphrase",
            confirm_password="a new passphrase",
        )
        assert done.status_code == 303
        assert (await client.get("/")).status_code == 200  # this session goes on
        assert (await phone.get("/")).status_code == 303  # the other one ended
        assert (await login(phone, user.email, user.password)).status_code == 400
        assert (await login(phone, user.email, "a new passphrase")).status_code == 303


def test_form_fields_finds_the_tokens() -> None:
    page = (
        '<form method="post" action="/x"><input type="hidden" name="csrf_token" value="a&amp;b">'
        "</form>"
    )
    assert form_fields(page, "/x") == {"csrf_token": "a&b"}


async def test_logging_in_again_replaces_the_session(
    logged_in: httpx.AsyncClient, panel_user: PanelUser, app: FastAPI
) -> None:
    before = logged_in.cookies["vpsorg_session"]

    assert (await login(logged_in, panel_user.email, panel_user.password)).status_code == 303

    after = logged_in.cookies["vpsorg_session"]
    assert after != before
    async with transaction(app.state.runtime.sessions) as session:
        stored = (await session.scalars(select(PanelSession.id_hash))).all()
    assert stored == [users.hash_secret(after)]
