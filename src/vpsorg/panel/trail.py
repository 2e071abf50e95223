"""Panel changes in the audit trail: the API's table, with the actor ``user`` and the user's
id, written in the change's own transaction (a refusal too, as the API records its 4xx)."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.audit import repository
from vpsorg.audit.models import Actor, AuditEvent, Outcome
from vpsorg.client_address import client_address
from vpsorg.clock import utcnow
from vpsorg.errors import ApiError
from vpsorg.panel.sessions import Visitor

SUCCESS_STATUS = 303
"""A panel change that succeeds answers with a redirect to its result."""


def record(
    session: AsyncSession,
    request: Request,
    visitor: Visitor,
    *,
    resource: str | None,
    action_id: int | None = None,
    error: ApiError | None = None,
) -> None:
    settings = request.app.state.settings
    repository.add(
        session,
        AuditEvent(
            created_at=utcnow(),
            account_id=visitor.account_id,
            user_id=visitor.user_id,
            actor=Actor.USER,
            client_address=client_address(request.scope, settings.trusted_proxies)[:64],
            request_id=request.scope.get("state", {}).get("request_id", ""),
            method=request.method,
            path=request.url.path[:500],
            resource=resource,
            action_id=action_id,
            status=error.status_code if error is not None else SUCCESS_STATUS,
            outcome=Outcome.REFUSED if error is not None else Outcome.SUCCESS,
            error_code=error.code if error is not None else None,
        ),
    )
