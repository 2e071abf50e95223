"""Errors are values with a status; one set of handlers renders them all.

Every error body is ``{"detail": str, "code": str, "errors": {field: [messages]}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)

READ_ONLY_FIELDS = frozenset(
    {
        "id", "status", "ip_address", "ipv6_address", "created_at", "updated_at",
        "plan", "os", "resource_usage", "message", "action",
    }
)  # fmt: skip


class ErrorBody(BaseModel):
    """The shape of every error response."""

    detail: str
    code: str
    errors: dict[str, list[str]] = {}


class ApiError(Exception):
    status_code = 400
    code = "bad_request"
    headers: Mapping[str, str] | None = None

    def __init__(self, detail: str, errors: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = {field: list(messages) for field, messages in (errors or {}).items()}

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, "errors": self.errors}


class InvalidParameters(ApiError):
    status_code = 400
    code = "invalid_parameters"

    @classmethod
    def field(cls, name: str, message: str) -> InvalidParameters:
        return cls(f"Invalid value for '{name}': {message}", {name: [message]})


class InvalidJson(ApiError):
    status_code = 400
    code = "invalid_json"

    @classmethod
    def because(cls, reason: str) -> InvalidJson:
        return cls("The request body is not valid JSON.", {"body": [reason]})


class InvalidHost(ApiError):
    status_code = 400
    code = "invalid_host"


class InvalidState(ApiError):
    status_code = 400
    code = "invalid_state"


class IdempotencyKeyReused(ApiError):
    status_code = 400
    code = "idempotency_key_reused"


class IdempotencyKeyInUse(ApiError):
    status_code = 409
    code = "idempotency_key_in_use"


class NotAuthenticated(ApiError):
    status_code = 401
    code = "not_authenticated"
    headers = {"WWW-Authenticate": "Bearer"}


class InsufficientCredits(ApiError):
    status_code = 402
    code = "insufficient_credits"


class AccountSuspended(ApiError):
    status_code = 402
    code = "account_suspended"


class InsufficientScope(ApiError):
    status_code = 403
    code = "insufficient_scope"


class LimitExceeded(ApiError):
    status_code = 403
    code = "limit_exceeded"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    """The request is well formed but collides with what exists (a key already on the account)."""

    status_code = 409
    code = "conflict"

    @classmethod
    def field(cls, name: str, message: str) -> Conflict:
        return cls(f"Conflicting value for '{name}': {message}", {name: [message]})


class MethodNotAllowed(ApiError):
    status_code = 405
    code = "method_not_allowed"


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status_code = 415
    code = "unsupported_media_type"


class RateLimited(ApiError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class CapacityUnavailable(ApiError):
    status_code = 503
    code = "capacity_unavailable"


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


def validation_error(
    raw_errors: Iterable[Mapping[str, Any]], extra: Mapping[str, list[str]] | None = None
) -> ApiError:
    """Turn pydantic/FastAPI validation errors into one ApiError naming every bad field."""
    errors: dict[str, list[str]] = {}
    path_error = False
    for error in raw_errors:
        loc = [str(part) for part in error.get("loc", ())]
        kind = error.get("type", "")
        if kind == "json_invalid":
            return InvalidJson(
                "The request body is not valid JSON.",
                {"body": [str(error.get("ctx", {}).get("error", "invalid JSON"))]},
            )
        if loc and loc[0] == "path":
            path_error = True
            continue
        if loc and loc[0] == "query":
            field = loc[1] if len(loc) > 1 else ""  # ?id=1&id=x: the parameter, not its index
        elif loc and loc[0] in ("body", "header"):
            field = ".".join(loc[1:])
        else:
            field = ".".join(loc)
        field = field or "body"
        errors.setdefault(field, []).append(_message(kind, field, error))
    if path_error and not errors:
        return NotFound("Not found: the id in the path is not a valid id.")
    for field, messages in (extra or {}).items():
        errors.setdefault(field, messages)
    names = ", ".join(f"'{name}'" for name in errors)
    return InvalidParameters(f"Invalid parameters: {names}.", errors)


def _message(kind: str, field: str, error: Mapping[str, Any]) -> str:
    if kind == "missing":
        return "This field is required."
    if kind == "extra_forbidden":
        if field in READ_ONLY_FIELDS:
            return "This field is read-only."
        return "Unknown field."
    if kind in ("model_attributes_type", "dict_type") and field == "body":
        return "The request body must be a JSON object."
    message = str(error.get("msg", "Invalid value."))
    message = message.removeprefix("Value error, ")
    return message if message.endswith(".") else message + "."


ROUTED_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path.

    Starlette's 405 names only the methods of the first route whose path matched, and
    FastAPI makes one route per method: ``GET /servers/`` alone, without its ``POST``.
    """
    routes = request.app.router.routes
    return [
        method
        for method in ROUTED_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Dependencies may have found more bad fields before the body was validated.
        extra = getattr(request.state, "extra_errors", None)
        return error_response(validation_error(exc.errors(), extra))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound("Not found."))
        if exc.status_code == 405:
            not_allowed = MethodNotAllowed("Method not allowed on this path.")
            not_allowed.headers = {"Allow": ", ".join(allowed_methods(request))}
            return error_response(not_allowed)
        error = ApiError(str(exc.detail))
        error.status_code = exc.status_code
        error.code = "http_error"
        return error_response(error)
