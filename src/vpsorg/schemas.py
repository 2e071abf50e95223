"""Building blocks shared by every domain's schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, field_validator

from vpsorg.clock import isoformat

UtcDatetime = Annotated[
    datetime, PlainSerializer(isoformat, return_type=str, when_used="json-unless-none")
]
"""Rendered as UTC ISO-8601 with a ``Z``: ``2025-01-16T15:30:00Z``."""


class RequestBody(BaseModel):
    """A request body: unknown fields are an error, and types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class PatchBody(RequestBody):
    """A partial update: any subset of fields, but a field that is sent may not be null."""

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field may not be null.")
        return value


class Page(BaseModel):
    count: int
    next: str | None
    previous: str | None
