"""Building blocks shared by every domain's schemas."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema, field_validator

from vpsorg.clock import isoformat

UtcDatetime = Annotated[
    datetime,
    PlainSerializer(isoformat, return_type=str, when_used="json-unless-none"),
    # The serializer returns str; generated clients should still parse a timestamp.
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2025-01-16T15:30:00Z"]}),
]
"""Rendered as UTC ISO-8601 with a ``Z``: ``2025-01-16T15:30:00Z``."""


MAX_ID = 2**31 - 1
"""Ids are 32-bit columns on every database: larger ones name nothing."""

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
PLAIN_TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
"""What the OpenAPI document says of every text field without a pattern of its own."""


def refuse_control_characters(value: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("Control characters (such as NUL or a line break) are not allowed.")
    return value


class RequestBody(BaseModel):
    """A request body: unknown fields are an error, types are not coerced, and no text
    holds control characters (PostgreSQL refuses NUL; a line break forges log lines)."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra=lambda schema: _document_plain_text(schema)
    )

    @field_validator("*", mode="before")
    @classmethod
    def _integral_number(cls, value: Any) -> Any:
        # JSON Schema's integer includes 60.0, as the OpenAPI document promises; strict
        # mode would refuse it (a float with a fraction is still refused, by the field).
        return int(value) if isinstance(value, float) and value.is_integer() else value

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        return refuse_control_characters(value) if isinstance(value, str) else value


def _document_plain_text(schema: dict[str, Any]) -> None:
    """Say in the document what ``_plain_text`` enforces, so that a client (or a fuzzer) that
    keeps to the document is not refused."""
    for field in schema.get("properties", {}).values():
        for variant in [field, *field.get("anyOf", [])]:
            if variant.get("type") == "string" and not {"pattern", "enum", "const"} & set(variant):
                variant["pattern"] = PLAIN_TEXT_PATTERN


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
