"""The caller's own audit trail."""

from __future__ import annotations

from fastapi import APIRouter, Request

from vpsorg.api import PageNumber, PerPage, error_responses, paginated
from vpsorg.audit import repository
from vpsorg.audit.schemas import AuditEventList, AuditEventOut
from vpsorg.deps import CurrentAccount, DbSession

router = APIRouter(prefix="/api/v1/account", tags=["account"])


@router.get("/events/", response_model=AuditEventList, responses=error_responses(400, 401))
async def list_account_events(
    request: Request,
    account: CurrentAccount,
    session: DbSession,
    page: PageNumber = 1,
    per_page: PerPage = 50,
) -> AuditEventList:
    """Every change made to this account, newest first: through the API (refusals included)
    and by the operator. Reads are not recorded."""
    offset = (page - 1) * per_page
    total, events = await repository.account_events(session, account.id, offset, per_page)
    results = [AuditEventOut.model_validate(event) for event in events]
    return paginated(AuditEventList, request, page, per_page, total, results)
