"""Bearer tokens and tenant isolation."""

from __future__ import annotations

import pytest

from tests.factories import ED25519, SERVER
from vpsorg.auth.tokens import revoke_token
from vpsorg.db import transaction


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc",
     "Bearer vps_" + "A" * 43, "Bearer not-a-token", "Bearer " + "x" * 5000],
)  # fmt: skip
async def test_missing_malformed_or_unknown_tokens_are_401(client, user, header):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header

    for method, path in [("GET", "/api/v1/servers/"), ("POST", "/api/v1/servers/"),
                         ("GET", "/api/v1/servers/1/"), ("POST", "/api/v1/servers/1/start/"),
                         ("GET", "/api/v1/plans/"), ("GET", "/api/v1/ssh-keys/")]:  # fmt: skip
        response = await client.request(
            method, path, json=SERVER if method == "POST" else None, headers=headers
        )
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "not_authenticated"


async def test_revoked_token_is_401(client, app, user):
    assert (await client.get("/api/v1/servers/", headers=user.headers)).status_code == 200
    async with transaction(app.state.runtime.sessions) as session:
        assert await revoke_token(session, user.token)

    response = await client.get("/api/v1/servers/", headers=user.headers)
    assert response.status_code == 401


async def test_scheme_is_case_insensitive(client, user):
    response = await client.get(
        "/api/v1/servers/", headers={"Authorization": f"bearer {user.token}"}
    )
    assert response.status_code == 200


async def test_another_accounts_server_is_404_and_untouched(client, factory, user):
    server = await factory.server(user)
    intruder = await factory.account(credits=100)
    url = f"/api/v1/servers/{server['id']}/"

    for method, suffix, body in [
        ("GET", "", None),
        ("PUT", "", {"name": "pwned", "hostname": "pwned.example.com", "backups_enabled": False}),
        ("PATCH", "", {"name": "pwned"}),
        ("POST", "stop/", None),
        ("POST", "reboot/", None),
        ("DELETE", "", None),
    ]:
        response = await client.request(method, url + suffix, json=body, headers=intruder.headers)
        assert response.status_code == 404, (method, suffix)
        assert "web-server-02" not in response.text

    listing = await client.get("/api/v1/servers/", headers=intruder.headers)
    assert listing.json()["count"] == 0
    owner_view = (await client.get(url, headers=user.headers)).json()
    assert owner_view["name"] == "web-server-02"
    assert owner_view["status"] == "active"


async def test_ssh_key_of_another_account_cannot_be_used(client, factory, user):
    intruder = await factory.account()
    key = await client.post(
        "/api/v1/ssh-keys/", json={"name": "mine", "public_key": ED25519}, headers=user.headers
    )
    response = await client.post(
        "/api/v1/servers/",
        json={**SERVER, "ssh_key_id": key.json()["id"]},
        headers=intruder.headers,
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"ssh_key_id"}
    other = await client.get(f"/api/v1/ssh-keys/{key.json()['id']}/", headers=intruder.headers)
    assert other.status_code == 404
