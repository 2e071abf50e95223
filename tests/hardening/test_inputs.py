"""Inputs seen to reach a 500 or to be accepted wrongly: each gets a clear 4xx and changes nothing."""

from __future__ import annotations

import json
import re

import pytest

from tests.factories import SERVER

NUL = "\u0000"


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"] and isinstance(body["errors"], dict)
    assert response.headers["x-request-id"]
    return body


async def _count(client, user) -> int:
    return (await client.get("/api/v1/servers/", headers=user.headers)).json()["count"]


# -- integers are bounded by their columns ------------------------------------------------


@pytest.mark.parametrize(
    "value", ["9223372036854775808", "2147483648", "-1", "0", "1e3", "9" * 5000]
)
async def test_action_ids_out_of_range_are_400(client, user, value):
    response = await client.get(f"/api/v1/actions/?id={value}", headers=user.headers)
    assert set(_error(response, 400, "invalid_parameters")["errors"]) == {"id"}


@pytest.mark.parametrize("query", ["page=2147483648", "per_page=99999999999999999999", "page=0"])
async def test_page_numbers_out_of_range_are_400(client, user, query):
    response = await client.get(f"/api/v1/servers/?{query}", headers=user.headers)
    _error(response, 400, "invalid_parameters")


@pytest.mark.parametrize("field", ["plan_id", "os_id", "ssh_key_id"])
async def test_body_ids_out_of_range_are_400(client, user, field):
    for value in (2**31, 2**63, 10**5000 if False else 2**64):
        response = await client.post(
            "/api/v1/servers/", json={**SERVER, field: value}, headers=user.headers
        )
        assert field in _error(response, 400, "invalid_parameters")["errors"]
    assert await _count(client, user) == 0


# -- text: no control characters, patterns match the whole value --------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"location": "us-west" + NUL}, "location"),
        ({"name": "web\n"}, "name"),
        ({"name": "web" + NUL}, "name"),
        ({"hostname": "a.example.com\n"}, "hostname"),
        ({"hostname": "a.example.com" + NUL}, "hostname"),
    ],
)
async def test_create_refuses_control_characters_and_trailing_newlines(
    client, user, factory, change, field
):
    before = await factory.balance(user)
    response = await client.post(
        "/api/v1/servers/", json={**SERVER, **change}, headers=user.headers
    )
    assert field in _error(response, 400, "invalid_parameters")["errors"]
    assert await _count(client, user) == 0
    assert await factory.balance(user) == before


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    ("field", "value"), [("name", "web\n"), ("hostname", "a.example.com\n"), ("name", "w" + NUL)]
)
async def test_updates_refuse_trailing_newlines_and_control_characters(
    client, user, factory, method, field, value
):
    server = await factory.server(user, wait=None)
    body = {"name": "web", "hostname": "web.example.com", "backups_enabled": False, field: value}
    if method == "PATCH":
        body = {field: value}
    response = await client.request(
        method, f"/api/v1/servers/{server['id']}/", json=body, headers=user.headers
    )
    assert field in _error(response, 400, "invalid_parameters")["errors"]
    after = (await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)).json()
    assert (after["name"], after["hostname"]) == (server["name"], server["hostname"])


@pytest.mark.parametrize(
    "body",
    [
        {
            "name": "laptop" + NUL,
            "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGp1c3QtYS10ZXN0LWtleS1mb3ItdnBzb3JnLXRlc3Rz x",
        },
        {
            "name": "laptop",
            "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGp1c3QtYS10ZXN0LWtleS1mb3ItdnBzb3JnLXRlc3Rz a"
            + NUL
            + "b",
        },
        {
            "name": "lap\ttop",
            "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGp1c3QtYS10ZXN0LWtleS1mb3ItdnBzb3JnLXRlc3Rz x",
        },
    ],
)
async def test_ssh_keys_refuse_control_characters(client, user, body):
    response = await client.post("/api/v1/ssh-keys/", json=body, headers=user.headers)
    _error(response, 400, "invalid_parameters")
    assert (await client.get("/api/v1/ssh-keys/", headers=user.headers)).json()["count"] == 0


@pytest.mark.parametrize("query", ["location=us-west%00", "status=active%00", "location=us%0Awest"])
async def test_query_text_refuses_control_characters(client, user, query):
    response = await client.get(f"/api/v1/servers/?{query}", headers=user.headers)
    _error(response, 400, "invalid_parameters")


# -- ids in paths are canonical decimals ---------------------------------------------------


@pytest.mark.parametrize("raw", ["1_0", "%201", "1%20", "%2B1", "01", "+1", "1.0", "0x1", "\u0661"])
async def test_only_canonical_ids_name_a_server(client, user, factory, raw):
    for _ in range(10):  # 1_0 would be server 10 to Python's int()
        await factory.server(user, wait=None, name="s")
    response = await client.get(f"/api/v1/servers/{raw}/", headers=user.headers)
    _error(response, 404, "not_found")


# -- methods --------------------------------------------------------------------------------


async def test_405_names_the_allowed_methods(client, user):
    response = await client.request("PUT", "/api/v1/plans/", headers=user.headers)
    _error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/v1/servers/", "GET, POST"),
        ("PUT", "/api/v1/servers/", "GET, POST"),
        ("POST", "/api/v1/servers/1/", "DELETE, GET, PATCH, PUT"),
        ("OPTIONS", "/api/v1/ssh-keys/1/", "DELETE, GET"),
        ("GET", "/api/v1/tokens/1/", "DELETE"),
    ],
)
async def test_405_names_every_method_of_the_path(client, user, method, path, allow):
    # One FastAPI route per method: Starlette's own Allow named the first route's only.
    response = await client.request(method, path, headers=user.headers)
    _error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow


async def test_head_answers_like_get_without_a_body(client, user, factory):
    server = await factory.server(user)  # active: nothing changes between the two requests
    get = await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    head = await client.head(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]
    missing = await client.head("/api/v1/servers/999/", headers=user.headers)
    assert (missing.status_code, missing.content) == (404, b"")


# -- bodies that are not JSON -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"name": ' + b"9" * 5000 + b"}",
        b'{"name": "\xff\xfe"}',
        b"\xff\xfe{}",
    ],
    ids=["deeply-nested", "5000-digit-number", "latin-1-in-a-string", "not-utf8"],
)
async def test_unparseable_bodies_are_invalid_json(client, user, raw):
    headers = {**user.headers, "Content-Type": "application/json"}
    response = await client.post("/api/v1/servers/", content=raw, headers=headers)
    assert "body" in _error(response, 400, "invalid_json")["errors"]
    assert await _count(client, user) == 0


async def test_json_without_a_content_type_is_read_as_json(client, user):
    headers = {"Authorization": user.headers["Authorization"]}
    response = await client.post("/api/v1/servers/", content=json.dumps(SERVER), headers=headers)
    assert response.status_code == 201, response.text


# -- query parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/servers/?sort=name", "/api/v1/plans/?x=1", "/api/v1/account/?page_size=5"]
)
async def test_unknown_query_parameters_are_400(client, user, path):
    response = await client.get(path, headers=user.headers)
    body = _error(response, 400, "invalid_parameters")
    name = path.split("?")[1].split("=")[0]
    assert body["errors"] == {name: ["Unknown query parameter."]}


# -- every response carries a request id, 500s included ------------------------------------------


async def test_a_500_carries_a_request_id_and_is_logged_with_it(client, app, user, caplog):
    async def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    def broken_read(*_args, **_kwargs):
        raise RuntimeError("boom")

    app.state.runtime.driver.state = broken  # not reached by GET; break a route instead
    from vpsorg.servers import repository

    original = repository.get_owned_view
    repository.get_owned_view = broken_read  # type: ignore[assignment]
    try:
        response = await client.get("/api/v1/servers/1/", headers=user.headers)
    finally:
        repository.get_owned_view = original  # type: ignore[assignment]
    body = _error(response, 500, "internal_error")
    request_id = response.headers["x-request-id"]
    assert body["detail"] == "Internal server error."
    assert any(request_id in record.getMessage() for record in caplog.records)


# -- links never point at a host the client chose --------------------------------------------------


async def test_a_foreign_host_header_is_400(client, user):
    response = await client.get(
        "/api/v1/servers/", headers={**user.headers, "Host": "evil.example.com"}
    )
    _error(response, 400, "invalid_host")


# -- what caches and browsers are told ----------------------------------------------------------


async def test_authenticated_responses_are_never_cached_and_never_sniffed(client, user):
    private = await client.get("/api/v1/account/", headers=user.headers)
    refused = await client.get("/api/v1/account/")
    assert private.headers["cache-control"] == "no-store"
    assert "cache-control" not in refused.headers
    for response in (private, refused):
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_links_are_built_from_the_public_url_when_set(app, client, user, factory):
    app.state.settings.public_url = "https://api.example.com"
    try:
        for n in range(3):
            await factory.server(user, wait=None, name=f"s{n}")
        page = (await client.get("/api/v1/servers/?per_page=2", headers=user.headers)).json()
    finally:
        app.state.settings.public_url = None
    assert page["next"].startswith(
        "https://api.example.com/api/v1/servers/?page=2&per_page=2&cursor="
    )


# -- what Schemathesis found: schema-valid requests that were refused --------------------


async def test_integral_numbers_are_integers(client, user):
    # JSON Schema's integer includes 3600.0; 3600.5 is still no integer.
    body = {"scope": "read", "expires_in": 3600.0}
    response = await client.post("/api/v1/tokens/", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    body["expires_in"] = 3600.5
    response = await client.post("/api/v1/tokens/", json=body, headers=user.headers)
    assert "expires_in" in _error(response, 400, "invalid_parameters")["errors"]


@pytest.mark.parametrize("code", ["", "US-West", "us_west", "-us"])
async def test_location_codes_have_a_documented_shape(client, user, code):
    response = await client.get("/api/v1/servers/", params={"location": code}, headers=user.headers)
    assert "location" in _error(response, 400, "invalid_parameters")["errors"]
    schema = (await client.get("/api/v1/openapi.json")).json()["components"]["schemas"]
    assert re.fullmatch(schema["ServerCreate"]["properties"]["location"]["pattern"], "us-west")
    assert not re.fullmatch(schema["ServerCreate"]["properties"]["location"]["pattern"], code)


async def test_the_documented_public_key_pattern_is_what_is_accepted(client, user):
    pattern = (await client.get("/api/v1/openapi.json")).json()["components"]["schemas"][
        "SshKeyCreate"
    ]["properties"]["public_key"]["pattern"]
    for index, key in enumerate(
        [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host",
            # What the pattern allows, as Schemathesis generated it before the pattern existed
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 43,
        ]
    ):
        assert re.fullmatch(pattern, key)
        body = {"name": f"k{index}", "public_key": key}
        response = await client.post("/api/v1/ssh-keys/", json=body, headers=user.headers)
        assert response.status_code == 201, response.text
    assert not re.fullmatch(pattern, "0" * 100)
