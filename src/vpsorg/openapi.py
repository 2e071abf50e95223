"""The OpenAPI document: what FastAPI generates, plus the errors the middleware can give.

Routes list the errors of their own logic (``api.error_responses``). The layers around every
route add more, and this module documents them on each operation they reach: 400 (an unknown
query parameter, a Host that is not allowed), 401 (any operation with BearerAuth), 403 (a change
asked with a read token), 409 (an ``Idempotency-Key`` still in progress), 413 and 415 (bodies),
429 (rate limits, when on).
FastAPI's 422 is dropped: validation errors are 400 with ErrorBody here. And the models'
examples are put back as pydantic wrote them: FastAPI drops every null from the document,
``"ip_address": null`` in an example too.

The document is served with the catalog as it stands (``live_document``): the plans, operating
systems and locations a create may name are enums, so that a request the document calls valid
is one the server accepts, and a generated client or the docs page offers the real choices.
The catalog changes when the operator changes it (``vpsorg plans add``); read it again then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_fields_from_routes
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vpsorg.api import ERROR_DESCRIPTIONS
from vpsorg.catalog import repository as catalog
from vpsorg.deps import READ_METHODS, DbSession
from vpsorg.idempotency.service import METHODS as IDEMPOTENT_METHODS
from vpsorg.middleware import BODY_METHODS

ERROR_SCHEMA = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
ERROR_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer`: the scheme to authenticate with",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until a request may succeed",
            "schema": {"type": "integer"},
        }
    },
}


OPENAPI_URL = "/api/v1/openapi.json"

router = APIRouter()


@dataclass(frozen=True)
class CatalogChoices:
    """What a create may name today, and what the servers list may be filtered by."""

    plan_ids: list[int]
    os_ids: list[int]
    new_server_locations: list[str]
    all_locations: list[str]


@router.get(OPENAPI_URL, include_in_schema=False)
async def openapi_document(request: Request, session: DbSession) -> JSONResponse:
    plans = await catalog.list_plans(session)
    systems = await catalog.list_operating_systems(session)
    locations = await catalog.list_locations(session)
    choices = CatalogChoices(
        plan_ids=[plan.id for plan in plans if plan.available],
        os_ids=[os.id for os in systems if os.available],
        new_server_locations=[loc.code for loc in locations if loc.available],
        all_locations=[loc.code for loc in locations],
    )
    return JSONResponse(live_document(request.app.openapi(), choices))


def live_document(document: dict[str, Any], choices: CatalogChoices) -> dict[str, Any]:
    """A copy of ``document`` whose catalog references are enums of ``choices``.

    Copies only what it changes: the cached document stays as FastAPI built it.
    """
    schemas = dict(document["components"]["schemas"])
    create = schemas["ServerCreate"]
    properties = dict(create["properties"])
    for name, values in (
        ("plan_id", choices.plan_ids),
        ("os_id", choices.os_ids),
        ("location", choices.new_server_locations),
    ):
        properties[name] = {**properties[name], "enum": values}
    schemas["ServerCreate"] = {**create, "properties": properties}
    paths = dict(document["paths"])
    listing = paths["/api/v1/servers/"]
    operation = listing["get"]
    parameters = [
        _location_enum(parameter, choices.all_locations)
        if parameter["name"] == "location"
        else parameter
        for parameter in operation["parameters"]
    ]
    paths["/api/v1/servers/"] = {**listing, "get": {**operation, "parameters": parameters}}
    return {
        **document,
        "paths": paths,
        "components": {**document["components"], "schemas": schemas},
    }


def _location_enum(parameter: dict[str, Any], codes: list[str]) -> dict[str, Any]:
    """The list filter's ``location`` (``anyOf`` a code or null) limited to known codes."""
    schema = parameter["schema"]
    variants = [
        {**variant, "enum": codes} if variant.get("type") == "string" else variant
        for variant in schema["anyOf"]
    ]
    return {**parameter, "schema": {**schema, "anyOf": variants}}


def install_openapi(app: FastAPI, *, rate_limited: bool) -> None:
    """Make ``app.openapi()`` return the completed document (built once, then cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = complete(generate(), rate_limited=rate_limited)
            restore_examples(document, model_examples(app))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], *, rate_limited: bool) -> dict[str, Any]:
    for path in document.get("paths", {}).values():
        for method, operation in path.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            authenticated = bool(operation.get("security"))
            for code in cross_cutting_errors(method.upper(), authenticated, rate_limited):
                responses.setdefault(str(code), {"description": ERROR_DESCRIPTIONS[code]})
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response.setdefault("content", ERROR_SCHEMA)
                    if int(status) in ERROR_HEADERS:
                        response.setdefault("headers", ERROR_HEADERS[int(status)])
            operation["responses"] = dict(sorted(responses.items()))
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return document


def cross_cutting_errors(method: str, authenticated: bool, rate_limited: bool) -> list[int]:
    """The statuses that the layers around a route may answer a ``method`` request with."""
    codes = [400]  # api.strict_query and middleware.RequestGuard's Host check
    if authenticated:
        codes.append(401)
    if authenticated and method not in READ_METHODS:
        codes.append(403)  # deps: a read token may not change anything
    if method in IDEMPOTENT_METHODS:
        codes.append(409)
    if method in BODY_METHODS:
        codes += [413, 415]
    if rate_limited:
        codes.append(429)
    return codes


def model_examples(app: FastAPI) -> dict[str, list[Any]]:
    """The ``examples`` of every model a route reads or returns (nested ones too), by name."""
    annotations = [field.field_info.annotation for field in get_fields_from_routes(app.routes)]
    models = {m for m in annotations if isinstance(m, type) and issubclass(m, BaseModel)}
    examples: dict[str, list[Any]] = {}
    for model in models:
        for mode in ("validation", "serialization"):
            schema = model.model_json_schema(mode=mode)
            for name, definition in [(model.__name__, schema), *schema.get("$defs", {}).items()]:
                if "examples" in definition:
                    examples[name] = definition["examples"]
    return examples


def restore_examples(document: dict[str, Any], examples: dict[str, list[Any]]) -> None:
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        base = name.removesuffix("-Input").removesuffix("-Output")
        if "examples" in schema and base in examples:
            schema["examples"] = examples[base]
