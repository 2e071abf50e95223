"""Bad input gets a clear 4xx with {detail, code, errors}, and changes nothing."""

from __future__ import annotations

import pytest

from tests.factories import SERVER


async def _server_count(client, user) -> int:
    return (await client.get("/api/v1/servers/", headers=user.headers)).json()["count"]


def _assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], dict)
    return body


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"name": ""}, {"name"}),
        ({"name": "-web"}, {"name"}),
        ({"name": "web-"}, {"name"}),
        ({"name": "web_server"}, {"name"}),
        ({"name": "a" * 64}, {"name"}),
        ({"name": 12}, {"name"}),
        ({"plan_id": "1"}, {"plan_id"}),
        ({"plan_id": 1.5}, {"plan_id"}),
        ({"plan_id": True}, {"plan_id"}),
        ({"plan_id": -1}, {"plan_id"}),
        ({"os_id": None}, {"os_id"}),
        ({"hostname": "not a host"}, {"hostname"}),
        ({"hostname": "localhost"}, {"hostname"}),
        ({"hostname": "-bad.example.com"}, {"hostname"}),
        ({"backups_enabled": "true"}, {"backups_enabled"}),
        ({"hostnme": "typo.example.com"}, {"hostnme"}),
        ({"status": "active"}, {"status"}),
        ({"plan_id": 999, "os_id": 999, "location": "mars"}, {"plan_id", "os_id", "location"}),
        ({"ssh_key_id": 4242}, {"ssh_key_id"}),
    ],
)
async def test_create_rejects_bad_fields_naming_each(client, user, factory, change, fields):
    before = await factory.balance(user)

    response = await client.post(
        "/api/v1/servers/", json={**SERVER, **change}, headers=user.headers
    )

    body = _assert_error(response, 400, "invalid_parameters")
    assert set(body["errors"]) == fields
    assert await _server_count(client, user) == 0
    assert await factory.balance(user) == before


async def test_unknown_references_are_named_beside_malformed_fields(client, user):
    body = {**SERVER, "name": "-bad-", "plan_id": 999, "os_id": "5", "location": "mars",
            "ssh_key_id": 77, "colour": "red"}  # fmt: skip

    response = await client.post("/api/v1/servers/", json=body, headers=user.headers)

    errors = _assert_error(response, 400, "invalid_parameters")["errors"]
    assert set(errors) == {"name", "plan_id", "os_id", "location", "ssh_key_id", "colour"}
    assert errors["plan_id"] == ["Unknown plan 999."]
    assert errors["location"] == ["Unknown location 'mars'."]


async def test_missing_required_fields_are_all_named(client, user):
    response = await client.post("/api/v1/servers/", json={}, headers=user.headers)

    body = _assert_error(response, 400, "invalid_parameters")
    assert set(body["errors"]) == {"name", "plan_id", "os_id", "location"}
    assert body["errors"]["name"] == ["This field is required."]


async def test_read_only_and_unknown_fields_are_told_apart(client, user):
    response = await client.post(
        "/api/v1/servers/",
        json={**SERVER, "status": "active", "colour": "red"},
        headers=user.headers,
    )

    errors = _assert_error(response, 400, "invalid_parameters")["errors"]
    assert errors == {"status": ["This field is read-only."], "colour": ["Unknown field."]}


async def test_malformed_json_is_400(client, user):
    response = await client.post(
        "/api/v1/servers/", content=b'{"name": "web",', headers=user.headers
    )
    _assert_error(response, 400, "invalid_json")
    assert await _server_count(client, user) == 0


@pytest.mark.parametrize("payload", [b"[]", b'"text"', b"42", b"null"])
async def test_body_must_be_an_object(client, user, payload):
    response = await client.post("/api/v1/servers/", content=payload, headers=user.headers)
    _assert_error(response, 400, "invalid_parameters")


async def test_missing_body_is_400(client, user):
    response = await client.post("/api/v1/servers/", headers=user.headers)
    _assert_error(response, 400, "invalid_parameters")


async def test_wrong_content_type_is_415(client, user):
    headers = {**user.headers, "Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post("/api/v1/servers/", content=b"name=web", headers=headers)
    _assert_error(response, 415, "unsupported_media_type")
    assert await _server_count(client, user) == 0


async def test_huge_body_is_413(client, user):
    huge = b'{"name": "' + b"a" * 200_000 + b'"}'
    response = await client.post("/api/v1/servers/", content=huge, headers=user.headers)
    _assert_error(response, 413, "payload_too_large")


async def test_huge_chunked_body_is_413(client, user):
    async def chunks():
        for _ in range(100):
            yield b"a" * 10_000

    response = await client.post("/api/v1/servers/", content=chunks(), headers=user.headers)
    _assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize("server_id", ["abc", "-1", "0", "1.5", "99999999999999999999"])
async def test_bad_ids_in_the_path_are_404(client, user, server_id):
    for method, suffix in [("GET", ""), ("DELETE", ""), ("POST", "start/"), ("PATCH", "")]:
        response = await client.request(
            method, f"/api/v1/servers/{server_id}/{suffix}", json={} if method == "PATCH" else None,
            headers=user.headers,
        )  # fmt: skip
        _assert_error(response, 404, "not_found")


async def test_unknown_server_is_404_for_every_endpoint(client, user):
    for method, suffix, body in [
        ("GET", "", None), ("PUT", "", {"name": "a", "hostname": "a.example.com",
                                        "backups_enabled": False}),
        ("PATCH", "", {"name": "a"}), ("DELETE", "", None), ("POST", "start/", None),
        ("POST", "stop/", None), ("POST", "reboot/", None),
    ]:  # fmt: skip
        response = await client.request(
            method, f"/api/v1/servers/12345/{suffix}", json=body, headers=user.headers
        )
        _assert_error(response, 404, "not_found")


async def test_unknown_route_and_wrong_method(client, user):
    _assert_error(await client.get("/api/v1/nothing/", headers=user.headers), 404, "not_found")
    response = await client.put("/api/v1/servers/", json={}, headers=user.headers)
    _assert_error(response, 405, "method_not_allowed")


async def test_every_response_carries_a_request_id(client, user):
    ok = await client.get("/api/v1/servers/", headers=user.headers)
    unauthorized = await client.get("/api/v1/servers/")
    too_large = await client.post("/api/v1/servers/", content=b"x" * 100_000, headers=user.headers)
    echoed = await client.get(
        "/api/v1/servers/", headers={**user.headers, "X-Request-ID": "abc-123"}
    )

    for response in (ok, unauthorized, too_large):
        assert len(response.headers["x-request-id"]) == 32
    assert ok.headers["x-request-id"] != unauthorized.headers["x-request-id"]
    assert echoed.headers["x-request-id"] == "abc-123"


async def test_insufficient_credits_is_402_and_changes_nothing(client, factory):
    poor = await factory.account(credits=0.02)  # plan 1 costs 0.03 per hour
    before = await factory.balance(poor)

    response = await client.post("/api/v1/servers/", json=SERVER, headers=poor.headers)

    body = _assert_error(response, 402, "insufficient_credits")
    assert "0.0300" in body["detail"] or "0.0360" in body["detail"]
    assert await _server_count(client, poor) == 0
    assert await factory.balance(poor) == before


async def test_backups_surcharge_counts_towards_the_credit_check(client, factory):
    user = await factory.account(credits=0.033)  # enough for 0.03/h, not for 0.036/h
    with_backups = await client.post("/api/v1/servers/", json=SERVER, headers=user.headers)
    without = await client.post(
        "/api/v1/servers/", json={**SERVER, "backups_enabled": False}, headers=user.headers
    )
    assert with_backups.status_code == 402
    assert without.status_code == 201


async def test_browsers_may_call_the_api(client, user):
    preflight = await client.options(
        "/api/v1/servers/",
        headers={"Origin": "https://panel.example.com", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"},
    )  # fmt: skip
    actual = await client.get(
        "/api/v1/servers/", headers={**user.headers, "Origin": "https://panel.example.com"}
    )

    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert actual.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in actual.headers["access-control-expose-headers"].lower()
