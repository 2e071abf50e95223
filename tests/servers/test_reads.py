"""The two hot reads (a server, a page of servers): bodies, authorization, cursors."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from vpsorg.auth.models import ApiToken
from vpsorg.auth.tokens import revoke_token
from vpsorg.clock import utcnow
from vpsorg.db import transaction
from vpsorg.servers import repository
from vpsorg.servers.models import Server
from vpsorg.servers.schemas import ServerDetail, ServerSummary, encode_cursor


async def _names(client, user, url):
    response = await client.get(url, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_rendered_rows_are_what_the_models_render(app, client, factory, user):
    """``body_from_row`` (the hot reads) and ``from_server`` (every other response) agree."""
    up = await factory.server(user, name="up")
    down = await factory.server(user, name="down")
    async with transaction(app.state.runtime.sessions) as session:
        # Not running (usage reads 0) and addresses not shown: the other branches.
        await session.execute(
            update(Server)
            .where(Server.id == down["id"])
            .values(status="stopped", provisioned_at=None, cpu_percent=12.5, memory_used_mb=7)
        )
    async with transaction(app.state.runtime.sessions) as session:
        servers = [
            await repository.get_owned(session, user.account_id, s["id"]) for s in (up, down)
        ]
    listing = await _names(client, user, "/api/v1/servers/")
    for server, summary in zip(servers, listing["results"], strict=True):
        assert server is not None
        assert summary == ServerSummary.from_server(server).model_dump(mode="json")
        detail = (await client.get(f"/api/v1/servers/{server.id}/", headers=user.headers)).json()
        assert detail == ServerDetail.from_server(server).model_dump(mode="json")
    assert listing["results"][0]["ip_address"] is not None
    assert listing["results"][1]["ip_address"] is None


async def test_detail_answers_json_with_the_documented_headers(client, factory, user):
    server = await factory.server(user, wait=None)
    response = await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    head = await client.head(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    assert head.status_code == 200
    assert head.content == b""


async def test_revoked_token_stops_reading_a_server_at_once(client, app, factory, user):
    server = await factory.server(user, wait=None)
    url = f"/api/v1/servers/{server['id']}/"
    assert (await client.get(url, headers=user.headers)).status_code == 200
    async with transaction(app.state.runtime.sessions) as session:
        assert await revoke_token(session, user.token)

    for path in (url, "/api/v1/servers/", "/api/v1/servers/999/", "/api/v1/servers/abc/"):
        response = await client.get(path, headers=user.headers)
        assert response.status_code == 401, path
        assert response.json()["code"] == "not_authenticated"


async def test_expired_token_reads_nothing(client, app, factory, user):
    server = await factory.server(user, wait=None)
    async with transaction(app.state.runtime.sessions) as session:
        await session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    assert response.status_code == 401


async def test_another_accounts_server_is_absent(client, factory, user):
    server = await factory.server(user, wait=None)
    other = await factory.account(name="other")

    response = await client.get(f"/api/v1/servers/{server['id']}/", headers=other.headers)
    assert response.status_code == 404
    assert response.json() == {
        "detail": f"Server {server['id']} not found.",
        "code": "not_found",
        "errors": {},
    }
    assert (await _names(client, other, "/api/v1/servers/"))["count"] == 0


async def test_a_deleted_server_is_absent(client, factory, user):
    server = await factory.server(user)
    assert (
        await client.delete(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    ).status_code == 204
    response = await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)
    assert response.status_code == 404
    assert (await _names(client, user, "/api/v1/servers/"))["count"] == 0


async def test_bad_ids_are_404_once_authenticated(client, user):
    for bad in ("abc", "016", "2147483648"):
        response = await client.get(f"/api/v1/servers/{bad}/", headers=user.headers)
        assert response.status_code == 404, bad
        assert response.json()["detail"] == "Not found: the id in the path is not a valid id."
        anonymous = await client.get(f"/api/v1/servers/{bad}/")
        assert anonymous.status_code == 401, bad


async def test_a_change_of_ones_own_shows_at_once(client, factory, user):
    server = await factory.server(user, wait=None)
    url = f"/api/v1/servers/{server['id']}/"
    assert (await client.patch(url, json={"name": "renamed"}, headers=user.headers)).is_success
    assert (await _names(client, user, url))["name"] == "renamed"
    assert (await _names(client, user, "/api/v1/servers/"))["results"][0]["name"] == "renamed"


async def test_following_next_walks_every_server_once(client, factory, user):
    ids = [(await factory.server(user, name=f"s{n}", wait=None))["id"] for n in range(5)]

    seen: list[int] = []
    url: str | None = "/api/v1/servers/?per_page=2"
    pages = 0
    while url is not None:
        page = await _names(client, user, url)
        assert page["count"] == 5
        seen += [server["id"] for server in page["results"]]
        url = page["next"]
        pages += 1
    assert seen == ids
    assert pages == 3


async def test_a_cursor_holds_its_place_when_servers_go(app, client, factory, user):
    ids = [(await factory.server(user, name=f"s{n}", wait=None))["id"] for n in range(5)]
    first = await _names(client, user, "/api/v1/servers/?per_page=2")
    # The first page's servers go (as a delete would): page 2 by number would now skip two.
    async with transaction(app.state.runtime.sessions) as session:
        await session.execute(
            update(Server).where(Server.id.in_(ids[:2])).values(deleted_at=utcnow())
        )

    second = await _names(client, user, first["next"])
    assert [server["id"] for server in second["results"]] == ids[2:4]
    assert second["count"] == 3
    assert second["previous"] == "http://testserver/api/v1/servers/?page=1&per_page=2"
    assert second["next"] == (
        f"http://testserver/api/v1/servers/?page=3&per_page=2&cursor={encode_cursor(ids[3])}"
    )
    last = await _names(client, user, second["next"])
    assert [server["id"] for server in last["results"]] == ids[4:]
    assert last["next"] is None


async def test_a_cursor_keeps_the_filters(client, factory, user):
    for n in range(3):
        await factory.server(user, name=f"w{n}", wait=None)
        await factory.server(user, name=f"e{n}", wait=None, location="us-east")

    url: str | None = "/api/v1/servers/?location=us-east&per_page=2"
    names: list[str] = []
    while url is not None:
        page = await _names(client, user, url)
        assert page["count"] == 3
        names += [server["name"] for server in page["results"]]
        url = page["next"]
        assert url is None or "location=us-east" in url
    assert names == ["e0", "e1", "e2"]


async def test_a_cursor_of_someone_else_shows_only_ones_own(client, factory, user):
    mine = await factory.server(user, wait=None)
    other = await factory.account(name="other")
    theirs = await factory.server(other, wait=None)

    page = await _names(client, other, f"/api/v1/servers/?cursor={encode_cursor(0)}")
    assert [server["id"] for server in page["results"]] == [theirs["id"]]
    assert mine["id"] not in [server["id"] for server in page["results"]]


async def test_a_bad_cursor_is_400(client, user):
    for bad in ("nope", encode_cursor(0)[:-2], "c2VydmVycy5hZnRlcjotMQ", "x" * 65, ""):
        response = await client.get(f"/api/v1/servers/?cursor={bad}", headers=user.headers)
        assert response.status_code == 400, bad
        assert response.json()["code"] == "invalid_parameters"
        assert "cursor" in response.json()["errors"], bad


async def test_deep_pages_count_exactly(client, factory, user):
    ids = [(await factory.server(user, name=f"s{n}", wait=None))["id"] for n in range(5)]
    page = await _names(client, user, "/api/v1/servers/?page=3&per_page=2")
    assert page["count"] == 5
    assert [server["id"] for server in page["results"]] == ids[4:]
    past = await _names(client, user, "/api/v1/servers/?page=9&per_page=2")
    assert past["count"] == 5
    assert past["results"] == []
    assert past["previous"] == "http://testserver/api/v1/servers/?page=3&per_page=2"


async def test_detail_refuses_unknown_query_parameters_first(client, factory, user):
    """The detail is served by hand (``DirectRoute``): the app-wide query check still runs,
    before authentication, as on every route."""
    server = await factory.server(user, wait=None)
    for headers in (user.headers, {}):
        response = await client.get(f"/api/v1/servers/{server['id']}/?page=2", headers=headers)
        assert response.status_code == 400
        assert response.json()["errors"] == {"page": ["Unknown query parameter."]}


async def test_detail_is_documented_as_before(app):
    operation = app.openapi()["paths"]["/api/v1/servers/{server_id}/"]["get"]
    assert operation["operationId"] == "get_server"
    assert [parameter["name"] for parameter in operation["parameters"]] == ["server_id"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ServerDetail"
    }
    assert {"401", "404"} <= set(operation["responses"])
