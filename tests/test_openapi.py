"""The OpenAPI document describes every endpoint with its real status codes."""

from __future__ import annotations

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
