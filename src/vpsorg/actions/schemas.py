from __future__ import annotations

from pydantic import BaseModel

from vpsorg.schemas import Page, UtcDatetime


class ActionErrorOut(BaseModel):
    code: str
    message: str


class ActionOut(BaseModel):
    id: int
    command: str
    status: str  # running | success | error
    progress: int
    server_id: int
    started_at: UtcDatetime
    finished_at: UtcDatetime | None
    error: ActionErrorOut | None


class ActionList(Page):
    results: list[ActionOut]
