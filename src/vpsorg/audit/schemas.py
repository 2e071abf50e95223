from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vpsorg.audit.models import Actor, Outcome
from vpsorg.schemas import Page, UtcDatetime


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: UtcDatetime
    actor: Actor = Field(
        description="token (an API request), operator (the operator's CLI), user (the web "
        "panel, by user_id), anonymous (a request without a live token)"
    )
    token_id: int | None = Field(description="The API token used, by id")
    client_address: str
    request_id: str = Field(description="The response's X-Request-ID")
    method: str = Field(description="HTTP method, or CLI for an operator's command")
    path: str = Field(description="Request path, or the operator's command")
    resource: str | None = Field(description="What it acted on, e.g. server:12")
    action_id: int | None = Field(description="The action it started, if any")
    user_id: int | None = Field(description="The panel user who made it (actor user)")
    status: int | None = Field(description="HTTP status; null for an operator's command")
    outcome: Outcome = Field(description="success, refused (with error_code), error or replayed")
    error_code: str | None


class AuditEventList(Page):
    results: list[AuditEventOut]
