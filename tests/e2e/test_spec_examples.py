"""Every request example of docs/servers-api.md, sent over TCP as its cURL line sends it.

Each request carries exactly the example's headers (``Authorization: Bearer ...`` and
``Content-Type: application/json``, even on GET and DELETE) and, where there is one, the
example's body byte for byte. Responses are held to the documented status codes and to
the documented example bodies: every documented field present with the documented type,
and the documented value wherever it does not depend on the installation (ids,
addresses, timestamps and usage do).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.e2e.processes import TIMESTAMP, Deployment, User, curl_headers, wait_for_status

pytestmark = pytest.mark.e2e

# -- the examples, as the spec shows them ----------------------------------------------

CREATE_BODY = """{
    "name": "web-server-02",
    "plan_id": 1,
    "os_id": 5,
    "location": "us-west",
    "hostname": "web02.example.com",
    "backups_enabled": true
  }"""
PUT_BODY = """{
    "name": "web-server-updated",
    "hostname": "web-updated.example.com",
    "backups_enabled": true
  }"""
PATCH_BODY = '{"name": "new-server-name"}'

STANDARD = {"id": 1, "name": "Standard VPS", "vcpus": 2, "memory": 4096, "storage": 80}
PERFORMANCE = {"id": 2, "name": "Performance VPS", "vcpus": 4, "memory": 8192, "storage": 160}
UBUNTU = {"id": 5, "name": "Ubuntu 22.04 LTS"}
DEBIAN = {"id": 3, "name": "Debian 12"}

LIST_RESPONSE = {
    "count": 2,
    "results": [
        {"id": 12345, "name": "web-server-01", "hostname": "web01.example.com",
         "status": "active", "ip_address": "203.0.113.10", "location": "us-west",
         "plan": STANDARD, "os": UBUNTU,
         "created_at": "2025-01-10T14:30:00Z", "updated_at": "2025-01-15T10:20:00Z"},
        {"id": 12346, "name": "db-server-01", "hostname": "db01.example.com",
         "status": "active", "ip_address": "203.0.113.11", "location": "us-east",
         "plan": PERFORMANCE, "os": DEBIAN,
         "created_at": "2025-01-12T09:15:00Z", "updated_at": "2025-01-16T08:45:00Z"},
    ],
}  # fmt: skip
CREATE_RESPONSE = {
    "id": 12347, "name": "web-server-02", "hostname": "web02.example.com",
    "status": "provisioning", "ip_address": None, "location": "us-west",
    "plan": STANDARD, "os": UBUNTU, "backups_enabled": True,
    "created_at": "2025-01-16T15:30:00Z", "updated_at": "2025-01-16T15:30:00Z",
    "message": "Server is being provisioned. This may take 2-5 minutes.",
}  # fmt: skip
DETAIL_RESPONSE = {
    "id": 12345, "name": "web-server-01", "hostname": "web01.example.com",
    "status": "active", "ip_address": "203.0.113.10", "ipv6_address": "2001:0db8::1",
    "location": "us-west", "plan": {**STANDARD, "bandwidth": 2048}, "os": UBUNTU,
    "backups_enabled": True,
    "resource_usage": {"cpu_percent": 23.5, "memory_used": 2048, "disk_used": 35,
                       "bandwidth_used": 450},
    "created_at": "2025-01-10T14:30:00Z", "updated_at": "2025-01-16T15:45:00Z",
}  # fmt: skip
POWER_RESPONSES = {
    command: {"status": "success", "message": f"Server is {during}",
              "server": {"id": 12345, "name": "web-server-01", "status": during}}
    for command, during in [("start", "starting"), ("stop", "stopping"),
                            ("reboot", "rebooting")]
}  # fmt: skip

# Values that differ between installations; only their type and form are checked.
VOLATILE = ("id", "ip_address", "ipv6_address", "resource_usage", "created_at", "updated_at")

# The server the detail and power examples show.
WEB_SERVER_01 = {"name": "web-server-01", "plan_id": 1, "os_id": 5, "location": "us-west",
                 "hostname": "web01.example.com", "backups_enabled": True}  # fmt: skip
DB_SERVER_01 = {"name": "db-server-01", "plan_id": 2, "os_id": 3, "location": "us-east",
                "hostname": "db01.example.com"}  # fmt: skip


# -- checking a body against an example ------------------------------------------------


def documented(actual: Any, example: Any, where: str = "body") -> Any:
    """The part of ``actual`` the example documents, checking each field's presence and type."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        missing = set(example) - set(actual)
        assert not missing, f"{where} lacks documented fields {sorted(missing)}: {actual}"
        return {k: documented(actual[k], v, f"{where}.{k}") for k, v in example.items()}
    if isinstance(example, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not an array"
        assert len(actual) == len(example), f"{where}: {len(actual)} items, not {len(example)}"
        pairs = enumerate(zip(actual, example, strict=True))
        return [documented(a, e, f"{where}[{n}]") for n, (a, e) in pairs]
    assert type(actual) is type(example), (
        f"{where}: {actual!r} is a {type(actual).__name__}, documented as "
        f"{type(example).__name__} ({example!r})"
    )
    return actual


def stable(server: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in server.items() if k not in VOLATILE}


def assert_server_like(actual: dict[str, Any], example: dict[str, Any]) -> None:
    """``actual`` has every field of the example server, with its value unless volatile."""
    shown = documented(actual, example)
    assert stable(shown) == stable(example)
    assert isinstance(shown["id"], int) and shown["id"] > 0
    assert TIMESTAMP.match(shown["created_at"]), shown["created_at"]
    assert TIMESTAMP.match(shown["updated_at"]), shown["updated_at"]
    if shown["ip_address"] is not None:
        assert isinstance(ipaddress.ip_address(shown["ip_address"]), ipaddress.IPv4Address)
    if shown.get("ipv6_address") is not None:
        assert isinstance(ipaddress.ip_address(shown["ipv6_address"]), ipaddress.IPv6Address)


# -- helpers ---------------------------------------------------------------------------


def servers_url(deployment: Deployment, server_id: int | None = None, tail: str = "") -> str:
    url = f"{deployment.base_url}/api/v1/servers/"
    return url if server_id is None else f"{url}{server_id}/{tail}"


def create(deployment: Deployment, user: User, fields: dict[str, Any]) -> dict[str, Any]:
    response = deployment.client.post(servers_url(deployment), json=fields, headers=user.headers)
    assert response.status_code == 201, response.text
    return wait_for_status(deployment.client, user, response.json()["id"], "active")


@pytest.fixture(scope="module")
def web01(shared_deployment: Deployment) -> dict[str, Any]:
    """An active web-server-01 of the shared account (not changed by any test)."""
    return create(shared_deployment, shared_deployment.user, WEB_SERVER_01)


# -- the nine examples -----------------------------------------------------------------


def test_list_servers_example(shared_deployment: Deployment) -> None:
    http = shared_deployment.client
    deployment = shared_deployment
    user = deployment.installation.create_user("lister")
    create(deployment, user, WEB_SERVER_01)
    create(deployment, user, DB_SERVER_01)

    response = http.get(servers_url(deployment), headers=curl_headers(user.token))

    assert response.status_code == 200
    body = documented(response.json(), LIST_RESPONSE)
    assert body["count"] == 2
    for actual, example in zip(body["results"], LIST_RESPONSE["results"], strict=True):
        assert_server_like(actual, example)


def test_create_server_example(shared_deployment: Deployment) -> None:
    http = shared_deployment.client
    deployment = shared_deployment

    response = http.post(
        servers_url(deployment), headers=curl_headers(deployment.token), content=CREATE_BODY
    )

    assert response.status_code == 201, response.text
    assert_server_like(response.json(), CREATE_RESPONSE)


def test_get_server_example(shared_deployment: Deployment, web01: dict[str, Any]) -> None:
    http = shared_deployment.client
    deployment = shared_deployment

    response = http.get(
        servers_url(deployment, web01["id"]), headers=curl_headers(deployment.token)
    )

    assert response.status_code == 200
    body = response.json()
    assert_server_like(body, DETAIL_RESPONSE)
    assert body["id"] == web01["id"]
    usage = documented(body["resource_usage"], DETAIL_RESPONSE["resource_usage"])
    assert usage["cpu_percent"] >= 0 and 0 < usage["memory_used"] <= 4096
    assert 0 <= usage["disk_used"] <= 80 and usage["bandwidth_used"] >= 0


def test_put_server_example(shared_deployment: Deployment) -> None:
    http = shared_deployment.client
    deployment = shared_deployment
    server = create(deployment, deployment.user, {**WEB_SERVER_01, "backups_enabled": False})
    url = servers_url(deployment, server["id"])

    response = http.put(url, headers=curl_headers(deployment.token), content=PUT_BODY)

    assert response.status_code == 200, response.text
    replaced = {"name": "web-server-updated", "hostname": "web-updated.example.com",
                "backups_enabled": True}  # fmt: skip
    assert_server_like(response.json(), {**DETAIL_RESPONSE, **replaced})
    again = http.get(url, headers=curl_headers(deployment.token)).json()
    assert {k: again[k] for k in replaced} == replaced


def test_patch_server_example(shared_deployment: Deployment) -> None:
    http = shared_deployment.client
    deployment = shared_deployment
    server = create(deployment, deployment.user, WEB_SERVER_01)
    url = servers_url(deployment, server["id"])

    response = http.patch(url, headers=curl_headers(deployment.token), content=PATCH_BODY)

    assert response.status_code == 200, response.text
    assert_server_like(response.json(), {**DETAIL_RESPONSE, "name": "new-server-name"})
    again = http.get(url, headers=curl_headers(deployment.token)).json()
    assert (again["name"], again["hostname"]) == ("new-server-name", "web01.example.com")


def test_delete_server_example(shared_deployment: Deployment) -> None:
    http = shared_deployment.client
    deployment = shared_deployment
    server = create(deployment, deployment.user, WEB_SERVER_01)
    url = servers_url(deployment, server["id"])

    response = http.delete(url, headers=curl_headers(deployment.token))

    assert response.status_code == 204
    assert response.content == b""
    assert http.get(url, headers=curl_headers(deployment.token)).status_code == 404
    listing = http.get(servers_url(deployment), headers=curl_headers(deployment.token)).json()
    assert server["id"] not in [s["id"] for s in listing["results"]]
    assert http.delete(url, headers=curl_headers(deployment.token)).status_code == 404


def test_stop_start_reboot_examples(shared_deployment: Deployment) -> None:
    http = shared_deployment.client
    deployment = shared_deployment
    server = create(deployment, deployment.user, WEB_SERVER_01)

    for command, after in [("stop", "stopped"), ("start", "active"), ("reboot", "active")]:
        response = http.post(
            servers_url(deployment, server["id"], f"{command}/"),
            headers=curl_headers(deployment.token),
        )

        assert response.status_code == 200, f"{command}: {response.text}"
        example = POWER_RESPONSES[command]
        body = documented(response.json(), example)
        assert body == {**example, "server": {**example["server"], "id": server["id"]}}
        wait_for_status(deployment.client, deployment.user, server["id"], after)


# -- the documented errors -------------------------------------------------------------


def test_power_commands_in_the_wrong_state_are_400(shared_deployment: Deployment) -> None:
    http = shared_deployment.client
    deployment = shared_deployment
    server = create(deployment, deployment.user, WEB_SERVER_01)
    headers = curl_headers(deployment.token)

    already_running = http.post(servers_url(deployment, server["id"], "start/"), headers=headers)
    http.post(servers_url(deployment, server["id"], "stop/"), headers=headers)
    wait_for_status(deployment.client, deployment.user, server["id"], "stopped")
    not_running = http.post(servers_url(deployment, server["id"], "reboot/"), headers=headers)

    assert already_running.status_code == 400, already_running.text
    assert not_running.status_code == 400, not_running.text
    for response in (already_running, not_running):
        assert set(response.json()) >= {"detail", "code"}


def test_create_with_invalid_parameters_is_400(shared_deployment: Deployment) -> None:
    http = shared_deployment.client
    response = http.post(
        servers_url(shared_deployment),
        headers=curl_headers(shared_deployment.token),
        content=CREATE_BODY.replace('"plan_id": 1', '"plan_id": 999'),
    )

    assert response.status_code == 400
    assert "plan_id" in response.json()["errors"]


def test_create_without_credits_is_402(shared_deployment: Deployment) -> None:
    http = shared_deployment.client
    broke = shared_deployment.installation.create_user("broke", credits=0)

    response = http.post(
        servers_url(shared_deployment), headers=curl_headers(broke.token), content=CREATE_BODY
    )

    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_credits"


ENDPOINTS = [
    ("GET", ""), ("POST", ""), ("GET", "{id}/"), ("PUT", "{id}/"), ("PATCH", "{id}/"),
    ("DELETE", "{id}/"), ("POST", "{id}/start/"), ("POST", "{id}/stop/"), ("POST", "{id}/reboot/"),
]  # fmt: skip
BODIES = {"POST": CREATE_BODY, "PUT": PUT_BODY, "PATCH": PATCH_BODY}


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer vps_" + "A" * 43, "Bearer not-a-token", "Token {token}", "Bearer"],
    ids=["missing", "unknown-token", "malformed-token", "wrong-scheme", "empty-token"],
)
def test_bad_credentials_are_401_with_a_bearer_challenge(
    shared_deployment: Deployment,
    web01: dict[str, Any],
    method: str,
    path: str,
    authorization: str | None,
) -> None:
    http = shared_deployment.client
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=shared_deployment.token)
    url = servers_url(shared_deployment) + path.format(id=web01["id"])

    response = http.request(method, url, headers=headers, content=BODIES.get(method))

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if "{id}" in e[1]])
def test_unknown_server_is_404(shared_deployment: Deployment, method: str, path: str) -> None:
    http = shared_deployment.client
    url = servers_url(shared_deployment) + path.format(id=12345)

    response = http.request(
        method, url, headers=curl_headers(shared_deployment.token), content=BODIES.get(method)
    )

    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"


def test_another_accounts_server_is_404(
    shared_deployment: Deployment, web01: dict[str, Any]
) -> None:
    http = shared_deployment.client
    stranger = shared_deployment.installation.create_user("stranger")
    url = servers_url(shared_deployment, web01["id"])

    response = http.get(url, headers=curl_headers(stranger.token))
    stop = http.post(f"{url}stop/", headers=curl_headers(stranger.token))

    assert response.status_code == 404
    assert stop.status_code == 404
    mine = http.get(url, headers=curl_headers(shared_deployment.token)).json()
    assert mine["status"] == "active"
