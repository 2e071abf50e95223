"""The documented server lifecycle, through the HTTP API."""

from __future__ import annotations

from tests.factories import SERVER
from vpsorg.servers.schemas import encode_cursor

SUMMARY_FIELDS = {"id", "name", "hostname", "status", "ip_address", "location", "plan", "os",
                  "created_at", "updated_at"}  # fmt: skip
DETAIL_FIELDS = SUMMARY_FIELDS | {"ipv6_address", "backups_enabled", "resource_usage"}


async def test_create_returns_provisioning_with_documented_fields(client, user):
    response = await client.post("/api/v1/servers/", json=SERVER, headers=user.headers)

    assert response.status_code == 201
    body = response.json()
    assert DETAIL_FIELDS | {"message"} <= set(body)
    assert body["status"] == "provisioning"
    assert body["ip_address"] is None
    assert body["message"] == "Server is being provisioned. This may take 2-5 minutes."
    assert body["plan"] == {"id": 1, "name": "Standard VPS", "vcpus": 2, "memory": 4096,
                            "storage": 80, "bandwidth": 2048}  # fmt: skip
    assert body["os"] == {"id": 5, "name": "Ubuntu 22.04 LTS"}
    assert body["backups_enabled"] is True
    assert body["created_at"].endswith("Z") and len(body["created_at"]) == 20


async def test_full_cycle_with_every_status_visible(client, user, factory):
    server = await factory.server(user, wait="active")
    assert server["ip_address"].startswith("203.0.113.")
    assert server["ipv6_address"].startswith("2001:db8:1::")
    url = f"/api/v1/servers/{server['id']}"

    for command, during, after in [
        ("stop", "stopping", "stopped"),
        ("start", "starting", "active"),
        ("reboot", "rebooting", "active"),
    ]:
        response = await client.post(f"{url}/{command}/", headers=user.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        action = body.pop("action")
        assert body == {
            "status": "success",
            "message": f"Server is {during}",
            "server": {"id": server["id"], "name": "web-server-02", "status": during},
        }
        assert (action["command"], action["server_id"]) == (command, server["id"])
        assert action["status"] in ("running", "success")
        await factory.wait_for(user, server["id"], after)

    response = await client.delete(f"{url}/", headers=user.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"{url}/", headers=user.headers)).status_code == 404


async def test_detail_has_usage_after_provisioning(client, user, factory):
    server = await factory.server(user)
    usage = server["resource_usage"]
    assert set(usage) == {"cpu_percent", "memory_used", "disk_used", "bandwidth_used"}
    assert isinstance(usage["cpu_percent"], float)
    assert 0 < usage["memory_used"] <= 4096
    assert 0 < usage["disk_used"] <= 80


async def test_list_shows_summaries_with_total_count(client, user, factory):
    await factory.server(user, name="web-server-01", wait=None)
    await factory.server(
        user, name="db-server-01", location="us-east", plan_id=2, os_id=3, wait=None
    )

    response = await client.get("/api/v1/servers/", headers=user.headers)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [s["name"] for s in body["results"]] == ["web-server-01", "db-server-01"]
    assert set(body["results"][0]) == SUMMARY_FIELDS
    assert body["results"][1]["plan"] == {"id": 2, "name": "Performance VPS", "vcpus": 4,
                                          "memory": 8192, "storage": 160}  # fmt: skip
    assert body["results"][1]["os"] == {"id": 3, "name": "Debian 12"}


async def test_list_filters_by_status_and_location(client, user, factory):
    first = await factory.server(user, name="a")
    await factory.server(user, name="b", location="us-east")
    await client.post(f"/api/v1/servers/{first['id']}/stop/", headers=user.headers)
    await factory.wait_for(user, first["id"], "stopped")

    stopped = await client.get("/api/v1/servers/?status=stopped", headers=user.headers)
    east = await client.get("/api/v1/servers/?location=us-east", headers=user.headers)
    none = await client.get("/api/v1/servers/?status=suspended", headers=user.headers)

    assert [s["name"] for s in stopped.json()["results"]] == ["a"]
    assert [s["name"] for s in east.json()["results"]] == ["b"]
    assert none.json() == {"count": 0, "next": None, "previous": None, "results": []}


async def test_list_rejects_unknown_status_and_location(client, user):
    bad_status = await client.get("/api/v1/servers/?status=running", headers=user.headers)
    bad_location = await client.get("/api/v1/servers/?location=mars", headers=user.headers)

    assert bad_status.status_code == 400
    assert bad_status.json()["code"] == "invalid_parameters"
    assert "status" in bad_status.json()["errors"]
    assert bad_location.status_code == 400
    assert "location" in bad_location.json()["errors"]


async def test_pagination_links(client, factory):
    user = await factory.account(credits=1000)
    ids = [(await factory.server(user, name=f"s{n}", wait=None))["id"] for n in range(5)]

    first = (await client.get("/api/v1/servers/?per_page=2", headers=user.headers)).json()
    assert first["count"] == 5
    assert [s["name"] for s in first["results"]] == ["s0", "s1"]
    assert first["previous"] is None
    assert first["next"] == (
        f"http://testserver/api/v1/servers/?page=2&per_page=2&cursor={encode_cursor(ids[1])}"
    )

    last = (await client.get("/api/v1/servers/?per_page=2&page=3", headers=user.headers)).json()
    assert [s["name"] for s in last["results"]] == ["s4"]
    assert last["next"] is None
    assert last["previous"] == "http://testserver/api/v1/servers/?page=2&per_page=2"

    for bad in ("page=0", "per_page=201", "page=abc", "per_page=-1"):
        response = await client.get(f"/api/v1/servers/?{bad}", headers=user.headers)
        assert response.status_code == 400, bad


async def test_put_replaces_all_three_fields(client, user, factory):
    server = await factory.server(user, wait=None)
    body = {"name": "web-server-updated", "hostname": "web-updated.example.com",
            "backups_enabled": False}  # fmt: skip

    response = await client.put(f"/api/v1/servers/{server['id']}/", json=body, headers=user.headers)

    assert response.status_code == 200
    updated = response.json()
    assert {k: updated[k] for k in body} == body
    assert set(updated) >= DETAIL_FIELDS
    again = (await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)).json()
    assert {k: again[k] for k in body} == body


async def test_put_requires_every_field(client, user, factory):
    server = await factory.server(user, wait=None)

    response = await client.put(
        f"/api/v1/servers/{server['id']}/", json={"name": "x"}, headers=user.headers
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"hostname", "backups_enabled"}
    unchanged = (await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)).json()
    assert unchanged["name"] == "web-server-02"


async def test_patch_changes_only_given_fields(client, user, factory):
    server = await factory.server(user, wait=None)

    response = await client.patch(
        f"/api/v1/servers/{server['id']}/", json={"name": "new-server-name"}, headers=user.headers
    )

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "new-server-name"
    assert body["hostname"] == "web02.example.com"
    assert body["backups_enabled"] is True


async def test_patch_rejects_null_and_bad_values(client, user, factory):
    server = await factory.server(user, wait=None)
    url = f"/api/v1/servers/{server['id']}/"

    null = await client.patch(url, json={"hostname": None}, headers=user.headers)
    bad = await client.patch(
        url, json={"name": "-bad-", "backups_enabled": "yes"}, headers=user.headers
    )

    assert null.status_code == 400 and "hostname" in null.json()["errors"]
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"name", "backups_enabled"}


async def test_deleted_server_frees_its_addresses(client, user, factory):
    first = await factory.server(user, name="first")
    await client.delete(f"/api/v1/servers/{first['id']}/", headers=user.headers)
    listing = await client.get("/api/v1/servers/", headers=user.headers)
    assert listing.json()["count"] == 0

    # The worker destroys the machine and frees the address; the next server may reuse it.
    for _ in range(200):
        second = await factory.server(user, name="second")
        if second["ip_address"] == first["ip_address"]:
            break
        await client.delete(f"/api/v1/servers/{second['id']}/", headers=user.headers)
    assert second["ip_address"] == first["ip_address"]
