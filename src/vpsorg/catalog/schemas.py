from __future__ import annotations

import re
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field, StringConstraints, field_validator

from vpsorg.catalog.sshkeys import PUBLIC_KEY_PATTERN, parse_public_key
from vpsorg.schemas import RequestBody, UtcDatetime

LOCATION_CODE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
LocationCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=f"^{LOCATION_CODE.pattern}$"),
]
"""A location's code, such as ``us-west``: an empty or malformed one names no location."""


class PlanOut(BaseModel):
    id: int
    name: str
    vcpus: int
    memory: int = Field(description="MB")
    storage: int = Field(description="GB")
    bandwidth: int = Field(description="GB of transfer per month")
    price_hourly: float = Field(description="credits per started hour")
    price_monthly: float = Field(description="credits per month at most (730 hours)")
    available: bool


class OperatingSystemOut(BaseModel):
    id: int
    name: str
    slug: str
    available: bool


class LocationOut(BaseModel):
    code: str
    name: str
    available: bool


T = TypeVar("T")


class CatalogList(BaseModel, Generic[T]):
    count: int
    results: list[T]


class SshKeyCreate(RequestBody):
    # Something besides spaces, which are stripped: the pattern says so.
    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
        Field(
            json_schema_extra={
                "pattern": r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
            }
        ),
    ]
    # The pattern documents the key's shape; parse_public_key is what decides.
    public_key: Annotated[
        str,
        StringConstraints(max_length=16384),
        Field(json_schema_extra={"pattern": PUBLIC_KEY_PATTERN}),
    ]

    @field_validator("public_key")
    @classmethod
    def _valid_key(cls, value: str) -> str:
        normalized, _fingerprint = parse_public_key(value)
        return normalized


class SshKeyOut(BaseModel):
    id: int
    name: str
    public_key: str
    fingerprint: str
    created_at: UtcDatetime
