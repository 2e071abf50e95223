"""The caller's own account: balance, burn rate, limits, and the credit ledger."""

from __future__ import annotations

from fastapi import APIRouter, Request

from vpsorg.accounts import repository
from vpsorg.accounts.models import MICROS, CreditEntry
from vpsorg.accounts.schemas import AccountOut, CreditEntryList, CreditEntryOut
from vpsorg.api import PageNumber, PerPage, error_responses, paginated
from vpsorg.billing import service as billing
from vpsorg.deps import CurrentAccount, DbSession
from vpsorg.servers import repository as servers

router = APIRouter(prefix="/api/v1/account", tags=["account"])


def entry_out(entry: CreditEntry) -> CreditEntryOut:
    return CreditEntryOut(
        id=entry.id, kind=entry.kind, amount=entry.amount_micros / MICROS,
        balance_after=entry.balance_after_micros / MICROS, memo=entry.memo,
        created_at=entry.created_at,
    )  # fmt: skip


@router.get("/", response_model=AccountOut, responses=error_responses(401))
async def get_account(account: CurrentAccount, session: DbSession) -> AccountOut:
    """Balance, hourly burn rate of the live servers, and the servers limit."""
    return AccountOut(
        id=account.id, name=account.name, balance=account.balance_micros / MICROS,
        hourly_burn_rate=await billing.burn_micros(session, account.id) / MICROS,
        servers_limit=account.servers_limit,
        servers_used=await servers.count_live(session, account.id),
        suspended=account.suspended_at is not None, suspended_reason=account.suspended_reason,
        created_at=account.created_at,
    )  # fmt: skip


@router.get("/credits/", response_model=CreditEntryList, responses=error_responses(400, 401))
async def list_credit_entries(
    request: Request,
    account: CurrentAccount,
    session: DbSession,
    page: PageNumber = 1,
    per_page: PerPage = 50,
) -> CreditEntryList:
    """The credit ledger, newest first: top-ups, hourly charges, refunds."""
    total, entries = await repository.ledger(session, account.id, (page - 1) * per_page, per_page)
    results = [entry_out(e) for e in entries]
    return paginated(CreditEntryList, request, page, per_page, total, results)
