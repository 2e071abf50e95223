"""The OpenAPI document describes every endpoint with its real status codes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from vpsorg.actions.models import ActionCommand, ActionStatus
from vpsorg.actions.schemas import ActionOut
from vpsorg.app import create_app
from vpsorg.servers.models import VISIBLE_STATUSES, ServerStatus
from vpsorg.servers.schemas import (
    PowerActionResult,
    ServerCreate,
    ServerCreated,
    ServerDetail,
    ServerList,
    ServerPatch,
    ServerReplace,
    _check_hostname,
    _check_name,
)

SPEC_ENDPOINTS = {
    ("get", "/api/v1/servers/"): {"200", "400", "401"},
    ("post", "/api/v1/servers/"): {"201", "400", "401", "402"},
    ("get", "/api/v1/servers/{server_id}/"): {"200", "401", "404"},
    ("put", "/api/v1/servers/{server_id}/"): {"200", "400", "401", "404"},
    ("patch", "/api/v1/servers/{server_id}/"): {"200", "400", "401", "404"},
    ("delete", "/api/v1/servers/{server_id}/"): {"204", "401", "404"},
    ("post", "/api/v1/servers/{server_id}/start/"): {"200", "400", "401", "402", "404"},
    ("post", "/api/v1/servers/{server_id}/stop/"): {"200", "400", "401", "402", "404"},
    ("post", "/api/v1/servers/{server_id}/reboot/"): {"200", "400", "401", "402", "404"},
}


async def test_openapi_lists_the_nine_endpoints_with_their_codes(client):
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for (method, path), codes in SPEC_ENDPOINTS.items():
        operation = paths[path][method]
        assert codes <= set(operation["responses"]), (method, path)
        assert "422" not in operation["responses"], (method, path)
        for code in codes - {"200", "201", "204"}:
            schema = operation["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}


async def test_interactive_docs_are_served(client):
    response = await client.get("/api/v1/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


# -- the contract for generated clients (issue 10) ----------------------------------------------

OPERATION_IDS = {
    ("get", "/api/v1/servers/"): "list_servers",
    ("post", "/api/v1/servers/"): "create_server",
    ("get", "/api/v1/servers/{server_id}/"): "get_server",
    ("put", "/api/v1/servers/{server_id}/"): "replace_server",
    ("patch", "/api/v1/servers/{server_id}/"): "update_server",
    ("delete", "/api/v1/servers/{server_id}/"): "delete_server",
    ("post", "/api/v1/servers/{server_id}/start/"): "start_server",
    ("post", "/api/v1/servers/{server_id}/stop/"): "stop_server",
    ("post", "/api/v1/servers/{server_id}/reboot/"): "reboot_server",
    ("get", "/api/v1/actions/{action_id}/"): "get_action",
    ("get", "/api/v1/actions/"): "list_actions",
    ("get", "/api/v1/servers/{server_id}/actions/"): "list_server_actions",
    ("get", "/api/v1/account/"): "get_account",
    ("get", "/api/v1/account/credits/"): "list_credit_entries",
    ("get", "/api/v1/plans/"): "list_plans",
    ("get", "/api/v1/os/"): "list_operating_systems",
    ("get", "/api/v1/locations/"): "list_locations",
    ("get", "/api/v1/ssh-keys/"): "list_ssh_keys",
    ("post", "/api/v1/ssh-keys/"): "create_ssh_key",
    ("get", "/api/v1/ssh-keys/{key_id}/"): "get_ssh_key",
    ("delete", "/api/v1/ssh-keys/{key_id}/"): "delete_ssh_key",
}

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def test_operation_ids_read_like_method_names(document):
    seen = {(method, path): op["operationId"] for method, path, op in operations(document)}
    for key, operation_id in OPERATION_IDS.items():
        assert seen.get(key) == operation_id, key
    ids = list(seen.values())
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for operation_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", operation_id), operation_id


def test_every_operation_is_bearer_authenticated(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes == {
        "BearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `Authorization: Bearer YOUR_API_TOKEN`.",
        }
    }
    for method, path, operation in operations(document):
        assert operation.get("security") == [{"BearerAuth": []}], (method, path)
        unauthorized = operation["responses"]["401"]
        assert unauthorized["content"]["application/json"]["schema"] == ERROR_REF
        assert "WWW-Authenticate" in unauthorized["headers"]


def test_every_error_response_is_an_error_body(document):
    for method, path, operation in operations(document):
        assert "422" not in operation["responses"], (method, path)
        for status, response in operation["responses"].items():
            if status >= "400":
                content = response["content"]["application/json"]["schema"]
                assert content == ERROR_REF, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_layers_around_the_routes_are_documented(document):
    """Every operation: 400 (unknown query parameter, Host). Writes: 409 (Idempotency-Key).
    Bodies: 413 and 415."""
    for method, path, operation in operations(document):
        statuses = set(operation["responses"])
        assert {"400", "401"} <= statuses, (method, path)
        if method in ("post", "put", "patch", "delete"):
            assert "409" in statuses, (method, path)
        if method in ("post", "put", "patch"):
            assert {"413", "415"} <= statuses, (method, path)
        assert "429" not in statuses  # the test settings turn rate limits off


async def test_rate_limits_are_documented_when_on(settings):
    app = create_app(settings.model_copy(update={"rate_limits": "10/minute"}))
    for method, path, operation in operations(app.openapi()):
        too_many = operation["responses"]["429"]
        assert "Retry-After" in too_many["headers"], (method, path)


def test_every_status_is_an_enum(document):
    assert schema(document, "ServerStatus")["enum"] == [s.value for s in ServerStatus]
    assert schema(document, "ActionStatus")["enum"] == [s.value for s in ActionStatus]
    assert schema(document, "ActionCommand")["enum"] == [c.value for c in ActionCommand]
    server_status = {"$ref": "#/components/schemas/ServerStatus"}
    for name in ("ServerSummary", "ServerDetail", "ServerCreated", "ServerRef"):
        assert schema(document, name)["properties"]["status"] == server_status, name
    action = schema(document, "ActionOut")["properties"]
    assert action["status"]["$ref"] == "#/components/schemas/ActionStatus"
    assert action["command"] == {"$ref": "#/components/schemas/ActionCommand"}
    assert schema(document, "PowerActionResult")["properties"]["status"]["const"] == "success"
    (status_filter,) = [
        p
        for p in document["paths"]["/api/v1/servers/"]["get"]["parameters"]
        if p["name"] == "status"
    ]
    assert status_filter["schema"]["anyOf"][0]["enum"] == list(VISIBLE_STATUSES)


def test_timestamps_are_date_times(document):
    found = 0
    for name, model in document["components"]["schemas"].items():
        for field, definition in model.get("properties", {}).items():
            if field.endswith("_at"):
                variants = definition.get("anyOf", [definition])
                formats = {v.get("format") for v in variants if v.get("type") == "string"}
                assert formats == {"date-time"}, (name, field)
                found += 1
    assert found >= 8


NAMES = [
    ("web-server-01", True),
    ("a", True),
    ("A9", True),
    ("x" * 63, True),
    ("x" * 64, False),
    ("-web", False),
    ("web-", False),
    ("web_01", False),
    ("web.01", False),
    ("", False),
]
HOSTNAMES = [
    ("web01.example.com", True),
    ("WEB01.Example.COM", True),
    ("web01.example.com.", True),
    ("a.b", True),
    ("xn--bcher-kva.example", True),
    (("a" * 63 + ".") * 3 + "a" * 61, True),
    (("a" * 63 + ".") * 3 + "a" * 62, False),
    ("localhost", False),
    ("web01..example.com", False),
    ("-web.example.com", False),
    ("web-.example.com", False),
    ("web01.example.123", False),
    ("1.2.3.4", False),
    ("a" * 64 + ".com", False),
    ("web 01.example.com", False),
]


@pytest.mark.parametrize("model", ["ServerCreate", "ServerReplace", "ServerPatch"])
def test_name_and_hostname_patterns_say_what_the_validators_accept(document, model):
    properties = schema(document, model)["properties"]
    name = properties["name"]
    hostname = properties["hostname"].get("anyOf", [properties["hostname"]])[0]
    # JSON Schema patterns are ECMA-262; these use nothing Python's re reads differently.
    for value, valid in NAMES:
        assert bool(re.search(name["pattern"], value)) is valid, value
        assert _accepts(_check_name, value) is valid, value
    for value, valid in HOSTNAMES:
        assert bool(re.search(hostname["pattern"], value)) is valid, value
        assert _accepts(_check_hostname, value) is valid, value


def _accepts(check: Callable[[str], str], value: str) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("ServerCreate", ServerCreate),
        ("ServerReplace", ServerReplace),
        ("ServerPatch", ServerPatch),
        ("ServerList", ServerList),
        ("ServerDetail", ServerDetail),
        ("ServerCreated", ServerCreated),
        ("PowerActionResult", PowerActionResult),
        ("ActionOut", ActionOut),
    ],
)
def test_examples_are_the_references_and_valid(document, name, model):
    (example,) = schema(document, name)["examples"]
    model.model_validate_json(json.dumps(example))
    if name == "ServerCreate":
        assert example == SPEC_CREATE_REQUEST


SPEC_CREATE_REQUEST = {
    "name": "web-server-02",
    "plan_id": 1,
    "os_id": 5,
    "location": "us-west",
    "hostname": "web02.example.com",
    "backups_enabled": True,
}


# -- the served document names the live catalog ---------------------------------------------


async def test_create_references_are_enums_of_the_live_catalog(client, factory, user):
    """A create the document calls valid is one the server accepts: plan, OS and location
    are enums of what is on sale now, and a plan taken off sale leaves the enum at once."""
    from sqlalchemy import update

    from vpsorg.catalog.models import Plan
    from vpsorg.db import transaction

    async def create_schema() -> dict[str, Any]:
        document = (await client.get("/api/v1/openapi.json")).json()
        properties: dict[str, Any] = schema(document, "ServerCreate")["properties"]
        return properties

    plans = (await client.get("/api/v1/plans/", headers=user.headers)).json()["results"]
    systems = (await client.get("/api/v1/os/", headers=user.headers)).json()["results"]
    locations = (await client.get("/api/v1/locations/", headers=user.headers)).json()["results"]
    properties = await create_schema()
    assert properties["plan_id"]["enum"] == [p["id"] for p in plans if p["available"]]
    assert properties["os_id"]["enum"] == [o["id"] for o in systems if o["available"]]
    assert properties["location"]["enum"] == [loc["code"] for loc in locations if loc["available"]]

    taken_off = properties["plan_id"]["enum"][0]
    async with transaction(factory.runtime.sessions) as session:
        await session.execute(update(Plan).where(Plan.id == taken_off).values(available=False))
    assert taken_off not in (await create_schema())["plan_id"]["enum"]
    refused = await client.post(
        "/api/v1/servers/",
        json={"name": "web", "plan_id": taken_off, "os_id": 1, "location": "us-west"},
        headers=user.headers,
    )
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"plan_id"}


async def test_the_list_filter_names_every_location(document, client, user):
    codes = [
        loc["code"]
        for loc in (await client.get("/api/v1/locations/", headers=user.headers)).json()["results"]
    ]
    (parameter,) = [
        p
        for p in document["paths"]["/api/v1/servers/"]["get"]["parameters"]
        if p["name"] == "location"
    ]
    assert {"type": "string", "enum": codes}.items() <= parameter["schema"]["anyOf"][0].items()
