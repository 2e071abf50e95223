"""What the actions API returns; ``ActionOut.from_action`` renders a stored action."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vpsorg.actions.models import Action, ActionCommand, ActionStatus
from vpsorg.schemas import Page, UtcDatetime

FINISHED = (ActionStatus.SUCCESS, ActionStatus.ERROR)


class ActionErrorOut(BaseModel):
    code: str
    message: str


class ActionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "command": "create",
                    "status": "success",
                    "progress": 100,
                    "server_id": 12347,
                    "started_at": "2025-01-16T15:30:00Z",
                    "finished_at": "2025-01-16T15:32:10Z",
                    "error": None,
                }
            ]
        }
    )

    id: int
    command: ActionCommand
    status: ActionStatus = Field(
        description="An action waiting for a worker is shown as `running` until it finishes."
    )
    progress: int = Field(ge=0, le=100)
    server_id: int
    started_at: UtcDatetime
    finished_at: UtcDatetime | None
    error: ActionErrorOut | None

    @classmethod
    def from_action(cls, action: Action) -> ActionOut:
        error = None
        if action.status == ActionStatus.ERROR:
            error = ActionErrorOut(code=action.error_code or "error", message=action.error or "")
        return cls(
            id=action.id,
            command=ActionCommand(action.command),
            status=ActionStatus(action.status)
            if action.status in FINISHED
            else ActionStatus.RUNNING,
            progress=action.progress,
            server_id=action.server_id,
            started_at=action.started_at or action.created_at,
            finished_at=action.finished_at,
            error=error,
        )


class ActionList(Page):
    results: list[ActionOut]
