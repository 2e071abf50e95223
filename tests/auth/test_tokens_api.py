"""Tokens customers manage themselves: scopes, expiry, last use, listing and revoking."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta

import pytest

from tests.factories import SERVER
from vpsorg import clock
from vpsorg.auth.models import ApiToken
from vpsorg.db import transaction
from vpsorg.logs import RedactTokens


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def _mint(client, user, **body) -> dict:
    response = await client.post("/api/v1/tokens/", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_token_is_shown_once_and_listed_without_it(client, user):
    created = await _mint(client, user, name="ci", scope="read")

    assert created["token"].startswith("vps_") and created["scope"] == "read"
    assert created["prefix"] == created["token"][:10]
    listed = (await client.get("/api/v1/tokens/", headers=user.headers)).json()
    assert listed["count"] == 2  # the caller's own and the new one
    assert {t["name"] for t in listed["results"]} == {"", "ci"}
    assert all("token" not in t for t in listed["results"])


async def test_a_read_token_reads_and_is_refused_every_change(client, user, factory):
    server = await factory.server(user, wait=None)
    reader = _bearer((await _mint(client, user, scope="read"))["token"])

    assert (await client.get("/api/v1/servers/", headers=reader)).status_code == 200
    assert (await client.get(f"/api/v1/servers/{server['id']}/", headers=reader)).status_code == 200
    changes = [
        ("POST", "/api/v1/servers/", SERVER),
        ("POST", f"/api/v1/servers/{server['id']}/stop/", None),
        ("PATCH", f"/api/v1/servers/{server['id']}/", {"name": "x"}),
        ("DELETE", f"/api/v1/servers/{server['id']}/", None),
        ("POST", "/api/v1/tokens/", {"scope": "read"}),
        ("DELETE", "/api/v1/tokens/1/", None),
    ]
    for method, path, body in changes:
        response = await client.request(method, path, json=body, headers=reader)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["code"] == "insufficient_scope"
    assert (await client.get("/api/v1/servers/", headers=user.headers)).json()["count"] == 1


async def test_expired_tokens_are_401_and_unlisted(client, user):
    created = await _mint(client, user, scope="write", expires_in=3600)
    token = _bearer(created["token"])
    assert (await client.get("/api/v1/account/", headers=token)).status_code == 200

    later = clock.utcnow() + timedelta(hours=1, seconds=1)
    clock.set_clock(lambda: later)
    try:
        response = await client.get("/api/v1/account/", headers=token)
        listed = (await client.get("/api/v1/tokens/", headers=user.headers)).json()
    finally:
        clock.set_clock(None)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert [t["id"] for t in listed["results"]] == [1]


async def test_a_token_cannot_outlive_the_token_that_makes_it(client, user):
    short = _bearer((await _mint(client, user, scope="write", expires_in=600))["token"])

    for body in ({"scope": "write", "expires_in": 3600}, {"scope": "read", "expires_in": 601}):
        response = await client.post("/api/v1/tokens/", json=body, headers=short)
        assert response.status_code == 400, response.text
        assert list(response.json()["errors"]) == ["expires_in"]
    inherited = await client.post("/api/v1/tokens/", json={"scope": "read"}, headers=short)
    assert inherited.status_code == 201
    assert inherited.json()["expires_at"] is not None


@pytest.mark.parametrize(
    "body",
    [{"scope": "admin"}, {"expires_in": 59}, {"expires_in": "3600"}, {"name": "a" * 101},
     {"name": "x\n"}, {"token": "vps_mine"}],
)  # fmt: skip
async def test_bad_token_requests_are_400(client, user, body):
    response = await client.post("/api/v1/tokens/", json=body, headers=user.headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_parameters"


async def test_revoking_one_s_own_token_and_never_another_account_s(client, user, factory):
    other = await factory.account(name="other")
    created = await _mint(client, user, scope="read")

    foreign = await client.delete("/api/v1/tokens/1/", headers=other.headers)
    mine = await client.delete(f"/api/v1/tokens/{created['id']}/", headers=user.headers)
    again = await client.delete(f"/api/v1/tokens/{created['id']}/", headers=user.headers)

    assert (foreign.status_code, mine.status_code, again.status_code) == (404, 204, 404)
    assert (
        await client.get("/api/v1/account/", headers=_bearer(created["token"]))
    ).status_code == 401
    assert (await client.get("/api/v1/account/", headers=user.headers)).status_code == 200


async def test_last_use_is_recorded_at_most_once_a_minute_outside_reads(client, app, user):
    async def last_used():
        await asyncio.sleep(0.05)  # the background write
        async with transaction(app.state.runtime.sessions) as session:
            return (await session.get(ApiToken, 1)).last_used_at

    start = clock.utcnow()
    clock.set_clock(lambda: start)
    try:
        await client.get("/api/v1/servers/", headers=user.headers)
        first = await last_used()
        clock.set_clock(lambda: start + timedelta(seconds=30))
        await client.get("/api/v1/servers/", headers=user.headers)
        unchanged = await last_used()
        clock.set_clock(lambda: start + timedelta(seconds=61))
        await client.get("/api/v1/servers/", headers=user.headers)
        moved = await last_used()
    finally:
        clock.set_clock(None)
    assert (first, unchanged, moved) == (start, start, start + timedelta(seconds=61))
    listed = (await client.get("/api/v1/tokens/", headers=user.headers)).json()
    assert listed["results"][0]["last_used_at"] is not None


async def test_a_token_in_the_query_string_is_never_accepted(client, user):
    response = await client.get(f"/api/v1/servers/?token={user.token}")
    assert response.status_code in (400, 401)


def test_access_logs_blank_tokens_in_query_strings():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/v1/servers/?token=vps_abcdefghijklmnopqrstuvwxyz", "1.1", 401),
        None,
    )  # fmt: skip
    RedactTokens().filter(record)
    assert "abcdefgh" not in record.getMessage()
    assert "token=vps_[redacted]" in record.getMessage()


async def test_every_change_in_the_document_is_403_for_a_read_token_and_says_so(
    client, user, factory
):
    """Driven by the OpenAPI document, so a new write route is covered the day it is added."""
    server = await factory.server(user, wait=None)
    reader = _bearer((await _mint(client, user, scope="read"))["token"])
    document = (await client.get("/api/v1/openapi.json")).json()

    changes = [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method not in ("get", "head")
    ]
    assert len(changes) >= 12
    for method, path, operation in changes:
        assert "403" in operation["responses"], (method, path)
        url = re.sub(r"\{[a-z_]+\}", "1", path.replace("{server_id}", str(server["id"])))
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = await client.request(method, url, json=body, headers=reader)
        assert response.status_code == 403, (method, url, response.text)
        assert response.json()["code"] == "insufficient_scope"
