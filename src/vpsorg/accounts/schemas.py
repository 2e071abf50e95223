from __future__ import annotations

from pydantic import BaseModel, Field

from vpsorg.schemas import Page, UtcDatetime


class AccountOut(BaseModel):
    id: int
    name: str
    balance: float = Field(description="Credits left")
    hourly_burn_rate: float = Field(description="Credits per hour the live servers cost now")
    servers_limit: int
    servers_used: int
    suspended: bool
    suspended_reason: str | None
    created_at: UtcDatetime


class CreditEntryOut(BaseModel):
    id: int
    kind: str = Field(description="topup, charge, refund or adjustment")
    amount: float
    balance_after: float
    memo: str
    created_at: UtcDatetime


class CreditEntryList(Page):
    results: list[CreditEntryOut]
