"""Helpers shared by the routers: the Bearer scheme, operation ids, documented error responses,
pagination, path ids."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BeforeValidator
from starlette.datastructures import URL

from vpsorg.errors import ErrorBody, InvalidParameters
from vpsorg.schemas import CONTROL_CHARACTERS, MAX_ID, Page

ERROR_DESCRIPTIONS = {
    400: "Bad request: invalid parameters or a state that does not allow this",
    401: "Unauthorized: invalid or missing API token",
    402: "Payment required: insufficient credits, or the account is suspended",
    403: "Forbidden: a read-only token (insufficient_scope), or an account limit",
    404: "Not found",
    409: "Conflict: it already exists, or a request with this Idempotency-Key is in progress",
    413: "Request body too large",
    415: "Unsupported media type: send application/json",
    429: "Too many requests: a rate limit was reached; retry after Retry-After seconds",
    503: "No capacity left for this request",
}


BEARER = HTTPBearer(
    scheme_name="BearerAuth",
    description="An API token: `Authorization: Bearer YOUR_API_TOKEN`.",
    # Only documents the scheme (and lets Swagger UI send the header): a missing or bad
    # token is answered by deps.authenticate with the project's own 401 body.
    auto_error=False,
)
"""An app-wide dependency: every API operation is authenticated, and says so in OpenAPI."""


def operation_id(route: APIRoute) -> str:
    """The operationId is the route's function name (``list_servers``): generated clients use
    it as the method name. Names are unique across the app (tests/openapi checks it)."""
    return route.name


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error status codes, all with ErrorBody."""
    return {code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


CANONICAL_ID = re.compile(r"[1-9][0-9]{0,9}")


def _canonical_id(value: object) -> object:
    """Only ``16`` names resource 16: not ``1_6``, ``016``, ``+16`` or `` 16`` (Python's int())."""
    if isinstance(value, str) and not CANONICAL_ID.fullmatch(value):
        raise ValueError("Not an id.")
    return value


PathId = Annotated[
    int, BeforeValidator(_canonical_id), Path(ge=1, le=MAX_ID, description="Unique id")
]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")]
PerPage = Annotated[int, Query(ge=1, le=200, description="Items per page (max 200)")]


PageT = TypeVar("PageT", bound=Page)

_query_names: dict[int, frozenset[str]] = {}


async def strict_query(request: Request) -> None:
    """Unknown query parameters are a 400, as unknown body fields are, and no query value may
    hold control characters. An app-wide dependency: it sees the route that matched.

    ``async`` though it never awaits: FastAPI runs a plain ``def`` dependency in a thread,
    and handing every request to a thread and back cost more than the check itself."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names.get(id(route))
    if known is None:
        known = _query_names[id(route)] = frozenset(_query_aliases(route.dependant))
    errors: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if name not in known:
            errors[name] = ["Unknown query parameter."]
        elif CONTROL_CHARACTERS.search(value):
            errors[name] = ["Control characters are not allowed."]
    if errors:
        names = ", ".join(f"'{name}'" for name in errors)
        raise InvalidParameters(f"Invalid query parameters: {names}.", errors)


def _query_aliases(dependant: Dependant) -> Iterator[str]:
    """The query parameters a route reads, its dependencies' included."""
    yield from (param.alias for param in dependant.query_params)
    for dependency in dependant.dependencies:
        yield from _query_aliases(dependency)


def paginated(
    schema: type[PageT], request: Request, page: int, per_page: int, total: int, results: list[Any]
) -> PageT:
    """A page of ``schema`` with ``count`` (the total) and ``next``/``previous`` links."""
    next_url, previous_url = page_links(request, page, per_page, total)
    return schema.model_validate(
        {"count": total, "next": next_url, "previous": previous_url, "results": results}
    )


def page_links(
    request: Request, page: int, per_page: int, total: int
) -> tuple[str | None, str | None]:
    """Absolute ``next`` and ``previous`` URLs, keeping the other query parameters."""
    last = last_page(total, per_page)

    def link(number: int) -> str:
        return absolute_link(
            request, request.url.include_query_params(page=number, per_page=per_page)
        )

    next_url = link(page + 1) if page < last else None
    previous_url = link(min(page - 1, last)) if page > 1 else None
    return next_url, previous_url


def last_page(total: int, per_page: int) -> int:
    """The number of the last page (1 when there is nothing to show)."""
    return max(1, -(-total // per_page))


def absolute_link(request: Request, url: URL) -> str:
    """``url`` (one of this request's) as clients should follow it: under VPSORG_PUBLIC_URL
    when set, else on the Host the request came to."""
    public_url: str | None = request.app.state.settings.public_url
    if public_url is None:  # the Host was checked against allowed_hosts
        return str(url)
    return f"{public_url}{url.path}?{url.query}"
