from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vpsorg.clock import utcnow
from vpsorg.db import Base

MICROS = 1_000_000
"""Money is kept as integer millionths of a credit: exact sums, no float drift."""


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    balance_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    servers_limit: Mapped[int] = mapped_column(Integer, default=10)
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    suspended_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CreditEntry(Base):
    """One line of an account's append-only credit ledger."""

    __tablename__ = "credit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # topup | charge | refund | adjustment
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    balance_after_micros: Mapped[int] = mapped_column(BigInteger)
    memo: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
