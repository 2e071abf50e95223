"""Helpers shared by the routers: documented error responses, pagination, path ids."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Path, Query, Request

from vpsorg.errors import ErrorBody
from vpsorg.schemas import Page

ERROR_DESCRIPTIONS = {
    400: "Bad request: invalid parameters or a state that does not allow this",
    401: "Unauthorized: invalid or missing API token",
    402: "Payment required: insufficient credits, or the account is suspended",
    403: "Forbidden: an account limit would be exceeded",
    404: "Not found",
    413: "Request body too large",
    415: "Unsupported media type: send application/json",
    503: "No capacity left for this request",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error status codes, all with ErrorBody."""
    return {code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


PathId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Unique id")]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")]
PerPage = Annotated[int, Query(ge=1, le=200, description="Items per page (max 200)")]


PageT = TypeVar("PageT", bound=Page)


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
    last_page = max(1, -(-total // per_page))

    def link(number: int) -> str:
        return str(request.url.include_query_params(page=number, per_page=per_page))

    next_url = link(page + 1) if page < last_page else None
    previous_url = link(min(page - 1, last_page)) if page > 1 else None
    return next_url, previous_url
