"""Each operation documents the errors it really gives: provoke them, look them up.

Every operation of the document is called without a token, with an unknown query parameter,
with a missing id and, if it takes a body, with a non-JSON and an oversized one; the status
that comes back must be among the operation's documented ones.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

MISSING_ID = "2147483647"
BODY_METHODS = ("post", "put", "patch")


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/api/v1/openapi.json")).json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, set[str]]]:
    return [
        (method, path, set(operation["responses"]))
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def concrete(path: str, server_id: int) -> str:
    """A server's path for ``{server_id}``, a missing id for the others."""
    path = path.replace("{server_id}", str(server_id))
    return re.sub(r"\{[a-z_]+\}", MISSING_ID, path)


async def call(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    if method in BODY_METHODS and "content" not in kwargs:
        kwargs["json"] = {}
    return await client.request(method.upper(), url, **kwargs)


async def test_documented_errors_include_what_each_operation_answers(
    client, document, user, factory
):
    server = await factory.server(user)
    observed: list[tuple[str, str, str, int]] = []
    for method, path, documented in operations(document):
        url = concrete(path, server["id"])
        cases = {
            "no token": await call(client, method, url),
            "unknown query parameter": await call(
                client, method, url, params={"bogus": "1"}, headers=user.headers
            ),
        }
        if "{" in path:
            missing = re.sub(r"\{[a-z_]+\}", MISSING_ID, path)
            cases["missing id"] = await call(client, method, missing, headers=user.headers)
        if method in BODY_METHODS:
            cases["text body"] = await call(
                client,
                method,
                url,
                content=b"name=x",
                headers={**user.headers, "Content-Type": "text/plain"},
            )
            cases["huge body"] = await call(
                client,
                method,
                url,
                content=b"[" + b" " * 70_000 + b"]",
                headers={**user.headers, "Content-Type": "application/json"},
            )
            cases["not an object"] = await call(
                client, method, url, content=b"[]", headers=user.headers
            )
        for case, response in cases.items():
            observed.append((method, path, case, response.status_code))
            assert str(response.status_code) in documented, (
                f"{method.upper()} {path} ({case}) answered {response.status_code}, "
                f"documented: {sorted(documented)}"
            )
    statuses = {status for *_, status in observed}
    assert {400, 401, 404, 413, 415} <= statuses


async def test_domain_errors_are_documented(client, document, user, factory):
    """What the services raise: 402 without credits, 400 for a state that forbids a command."""
    paths = document["paths"]
    broke = await factory.account(credits=0)
    response = await client.post(
        "/api/v1/servers/",
        json={"name": "web", "plan_id": 1, "os_id": 5, "location": "us-west"},
        headers=broke.headers,
    )
    assert response.status_code == 402, response.text
    assert "402" in paths["/api/v1/servers/"]["post"]["responses"]

    server = await factory.server(user)
    response = await client.post(f"/api/v1/servers/{server['id']}/start/", headers=user.headers)
    assert response.status_code == 400, response.text
    assert "400" in paths["/api/v1/servers/{server_id}/start/"]["post"]["responses"]
