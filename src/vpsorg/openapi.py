"""The OpenAPI document: what FastAPI generates, plus the errors the middleware can give.

Routes list the errors of their own logic (``api.error_responses``). The layers around every
route add more, and this module documents them on each operation they reach: 400 (an unknown
query parameter, a Host that is not allowed), 401 (any operation with BearerAuth), 409 (an
``Idempotency-Key`` still in progress), 413 and 415 (bodies), 429 (rate limits, when on).
FastAPI's 422 is dropped: validation errors are 400 with ErrorBody here. And the models'
examples are put back as pydantic wrote them: FastAPI drops every null from the document,
``"ip_address": null`` in an example too.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_fields_from_routes
from pydantic import BaseModel

from vpsorg.api import ERROR_DESCRIPTIONS
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
