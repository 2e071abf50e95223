"""Plans, OS images, locations and SSH keys."""

from __future__ import annotations

import base64
import struct

import pytest

from tests.factories import ED25519, SERVER


async def test_plans_match_the_reference_and_show_prices(client, user):
    body = (await client.get("/api/v1/plans/", headers=user.headers)).json()
    plans = {p["id"]: p for p in body["results"]}
    assert body["count"] == len(plans) >= 4
    assert plans[1] | {"price_hourly": 0, "price_monthly": 0} == {
        "id": 1, "name": "Standard VPS", "vcpus": 2, "memory": 4096, "storage": 80,
        "bandwidth": 2048, "price_hourly": 0, "price_monthly": 0, "available": True,
    }  # fmt: skip
    assert (plans[2]["name"], plans[2]["vcpus"], plans[2]["memory"], plans[2]["storage"]) == (
        "Performance VPS", 4, 8192, 160,
    )  # fmt: skip
    assert plans[1]["price_monthly"] == round(plans[1]["price_hourly"] * 730, 2)


async def test_operating_systems_and_locations(client, user):
    systems = (await client.get("/api/v1/os/", headers=user.headers)).json()["results"]
    names = {o["id"]: o["name"] for o in systems}
    assert names[5] == "Ubuntu 22.04 LTS" and names[3] == "Debian 12"

    locations = (await client.get("/api/v1/locations/", headers=user.headers)).json()["results"]
    assert {"us-west", "us-east"} <= {loc["code"] for loc in locations}


async def test_ssh_key_lifecycle_and_use(client, user, factory):
    created = await client.post(
        "/api/v1/ssh-keys/", json={"name": "laptop", "public_key": ED25519}, headers=user.headers
    )
    assert created.status_code == 201
    key = created.json()
    assert key["fingerprint"].startswith("SHA256:")
    assert key["public_key"] == ED25519
    assert key["created_at"].endswith("Z")

    listing = (await client.get("/api/v1/ssh-keys/", headers=user.headers)).json()
    assert [k["id"] for k in listing["results"]] == [key["id"]]
    assert (await client.get(f"/api/v1/ssh-keys/{key['id']}/", headers=user.headers)).json() == key

    server = await factory.server(user, ssh_key_id=key["id"])
    assert server["status"] == "active"

    deleted = await client.delete(f"/api/v1/ssh-keys/{key['id']}/", headers=user.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/ssh-keys/{key['id']}/", headers=user.headers)
    assert gone.status_code == 404
    still = await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    assert still.status_code == 200


def _key(key_type: str, payload: bytes) -> str:
    blob = struct.pack(">I", len(key_type)) + key_type.encode() + payload
    return f"{key_type} {base64.b64encode(blob).decode()}"


@pytest.mark.parametrize(
    "public_key",
    [
        "",
        "not a key",
        "ssh-ed25519",
        "ssh-ed25519 !!!notbase64!!!",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        _key("ssh-rsa", b"x" * 60).replace("ssh-rsa", "ssh-ed25519", 1),
        _key("ssh-ed25519", b"short"),
    ],
)
async def test_invalid_public_keys_are_rejected(client, user, public_key):
    response = await client.post(
        "/api/v1/ssh-keys/", json={"name": "k", "public_key": public_key}, headers=user.headers
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"public_key"}
    assert (await client.get("/api/v1/ssh-keys/", headers=user.headers)).json()["count"] == 0


async def test_duplicate_key_is_rejected(client, user):
    body = {"name": "laptop", "public_key": ED25519}
    assert (
        await client.post("/api/v1/ssh-keys/", json=body, headers=user.headers)
    ).status_code == 201
    again = await client.post("/api/v1/ssh-keys/", json=body, headers=user.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    assert "public_key" in again.json()["errors"]
    assert (await client.get("/api/v1/ssh-keys/", headers=user.headers)).json()["count"] == 1


async def test_create_with_unknown_references_names_each(client, user):
    response = await client.post(
        "/api/v1/servers/", json={**SERVER, "plan_id": 99, "location": "moon"}, headers=user.headers
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"plan_id", "location"}


async def test_an_ssh_key_id_written_as_a_float_is_still_checked_for_its_owner(
    client, factory, user
):
    """JSON Schema's integer includes 1.0, and validation reads it as 1: the owner check must
    read it the same way (it once skipped such an id, and the insert used another account's key
    or failed its foreign key with a 500)."""
    other = await factory.account(name="other")
    theirs = await client.post(
        "/api/v1/ssh-keys/", json={"name": "theirs", "public_key": ED25519}, headers=other.headers
    )
    key_id = theirs.json()["id"]
    refused = await client.post(
        "/api/v1/servers/", json={**SERVER, "ssh_key_id": float(key_id)}, headers=user.headers
    )
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"ssh_key_id"}
    servers = await client.get("/api/v1/servers/", headers=user.headers)
    assert servers.json()["count"] == 0

    mine = await client.post(
        "/api/v1/ssh-keys/", json={"name": "mine", "public_key": ED25519}, headers=user.headers
    )
    created = await client.post(
        "/api/v1/servers/",
        json={**SERVER, "ssh_key_id": float(mine.json()["id"])},
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
