"""The other pages: SSH keys, API tokens (shown once), the account; assets and headers."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from tests.factories import ED25519
from tests.panel.conftest import PanelUser, submit

PAGES = ["/", "/servers/new", "/ssh-keys", "/tokens", "/account", "/password"]


async def test_every_page_renders_with_labels_and_safe_headers(
    logged_in: httpx.AsyncClient,
) -> None:
    for path in PAGES:
        response = await logged_in.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert 'name="viewport"' in response.text
        # Every visible input has a label.
        for input_id in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', response.text):
            assert f'for="{input_id}"' in response.text, (path, input_id)


async def test_the_assets_are_served_here(client: httpx.AsyncClient) -> None:
    css = await client.get("/panel/static/panel.css")
    js = await client.get("/panel/static/panel.js")
    assert css.status_code == js.status_code == 200
    login = await client.get("/login")
    assert "http://" not in login.text and "https://" not in login.text  # no CDN


async def test_ssh_keys_are_added_and_deleted(
    logged_in: httpx.AsyncClient, panel_user: PanelUser
) -> None:
    bad = await submit(logged_in, "/ssh-keys", "/ssh-keys", name="laptop", public_key="nope")
    assert bad.status_code == 400
    assert 'id="public_key-error"' in bad.text

    added = await submit(logged_in, "/ssh-keys", "/ssh-keys", name="laptop", public_key=ED25519)
    assert added.status_code == 303
    keys = (await logged_in.get("/api/v1/ssh-keys/", headers=panel_user.api.headers)).json()
    (key,) = keys["results"]
    page = await logged_in.get("/ssh-keys")
    assert key["fingerprint"] in page.text
    again = await submit(logged_in, "/ssh-keys", "/ssh-keys", name="again", public_key=ED25519)
    assert again.status_code == 409
    assert "already on the account" in again.text

    deleted = await submit(logged_in, "/ssh-keys", f"/ssh-keys/{key['id']}/delete")
    assert deleted.status_code == 303
    keys = (await logged_in.get("/api/v1/ssh-keys/", headers=panel_user.api.headers)).json()
    assert keys["count"] == 0
    events = await logged_in.get("/api/v1/account/events/", headers=panel_user.api.headers)
    results = events.json()["results"]
    assert {e["user_id"] for e in results} == {panel_user.user_id}
    recorded = [(e["actor"], e["path"], e["outcome"]) for e in results]
    assert recorded == [
        ("user", f"/ssh-keys/{key['id']}/delete", "success"),
        ("user", "/ssh-keys", "refused"),
        ("user", "/ssh-keys", "success"),
        ("user", "/ssh-keys", "refused"),
    ]


async def test_a_token_is_shown_once_works_and_is_revoked(
    logged_in: httpx.AsyncClient, app: FastAPI
) -> None:
    created = await submit(logged_in, "/tokens", "/tokens", name="ci", scope="read")
    assert created.status_code == 201
    (token,) = re.findall(r'value="(vps_[A-Za-z0-9_-]{43})"', created.text)
    assert "shown this once" in created.text
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await logged_in.get("/api/v1/servers/", headers=bearer)).status_code == 200

    listed = await logged_in.get("/tokens")
    assert token not in listed.text
    assert token[:10] in listed.text
    token_id = re.findall(r'action="/tokens/(\d+)/revoke"', listed.text)[0]

    bad = await submit(logged_in, "/tokens", "/tokens", name="x", scope="admin")
    assert bad.status_code == 400
    assert 'id="scope-error"' in bad.text

    revoked = await submit(logged_in, "/tokens", f"/tokens/{token_id}/revoke")
    assert revoked.status_code == 303
    assert (await logged_in.get("/api/v1/servers/", headers=bearer)).status_code == 401


async def test_the_account_page_shows_balance_burn_rate_and_ledger(
    logged_in: httpx.AsyncClient,
) -> None:
    response = await submit(
        logged_in,
        "/servers/new",
        "/servers/new",
        name="web-1",
        plan_id="1",
        os_id="5",
        location="us-west",
    )
    assert response.status_code == 303

    page = await logged_in.get("/account")

    assert "Balance" in page.text and "Burn rate" in page.text
    assert "credits/hour" in page.text
    assert "charge" in page.text and "topup" in page.text


async def test_the_api_document_has_no_panel_paths(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    assert all(path.startswith("/api/v1/") for path in document["paths"]), document["paths"].keys()
