"""Request and response bodies of the servers API (shared/spec/servers-api.md)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from vpsorg.actions.schemas import ActionOut
from vpsorg.schemas import MAX_ID, Page, PatchBody, RequestBody, UtcDatetime

NAME_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
LABEL_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _check_name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            "Use 1-63 letters, digits and hyphens, not starting or ending with a hyphen."
        )
    return value


def _check_hostname(value: str) -> str:
    host = value.lower().removesuffix(".")
    labels = host.split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(LABEL_PATTERN.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError("Must be a fully qualified domain name such as 'web01.example.com'.")
    return host


ServerName = Annotated[str, AfterValidator(_check_name)]
Hostname = Annotated[str, AfterValidator(_check_hostname)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class ServerCreate(RequestBody):
    name: ServerName
    plan_id: Id
    os_id: Id
    location: Annotated[str, Field(max_length=32)]
    hostname: Hostname | None = None
    ssh_key_id: Id | None = None
    backups_enabled: bool = False


class ServerReplace(RequestBody):
    name: ServerName
    hostname: Hostname
    backups_enabled: bool


class ServerPatch(PatchBody):
    name: ServerName = None  # type: ignore[assignment]
    hostname: Hostname = None  # type: ignore[assignment]
    backups_enabled: bool = None  # type: ignore[assignment]


class PlanSummary(BaseModel):
    id: int
    name: str
    vcpus: int
    memory: int = Field(description="MB")
    storage: int = Field(description="GB")


class PlanDetail(PlanSummary):
    bandwidth: int = Field(description="GB per month")


class OsRef(BaseModel):
    id: int
    name: str


class ResourceUsage(BaseModel):
    cpu_percent: float
    memory_used: int = Field(description="MB")
    disk_used: int = Field(description="GB")
    bandwidth_used: int = Field(description="GB this billing period")


class ServerSummary(BaseModel):
    id: int
    name: str
    hostname: str | None
    status: str
    ip_address: str | None
    location: str
    plan: PlanSummary
    os: OsRef
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ServerDetail(BaseModel):
    id: int
    name: str
    hostname: str | None
    status: str
    ip_address: str | None
    ipv6_address: str | None
    location: str
    plan: PlanDetail
    os: OsRef
    backups_enabled: bool
    resource_usage: ResourceUsage
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ServerCreated(ServerDetail):
    message: str
    action: ActionOut


class ServerList(Page):
    results: list[ServerSummary]


class ServerRef(BaseModel):
    id: int
    name: str
    status: str


class PowerActionResult(BaseModel):
    status: str = "success"
    message: str
    server: ServerRef
    action: ActionOut
