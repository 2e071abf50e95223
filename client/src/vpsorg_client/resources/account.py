"""The account: its balance and limits, its credit ledger, and its audit events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from vpsorg_client._http import Request
from vpsorg_client.models import Account, CreditEntry, Event
from vpsorg_client.resources._base import DEFAULT_PER_PAGE, AsyncResource, SyncResource

ACCOUNT = Request("GET", "/account/")
LEDGER = Request("GET", "/account/credits/")
EVENTS = Request("GET", "/account/events/")


class AccountResource(SyncResource):
    def get(self) -> Account:
        return self._call(ACCOUNT, Account.model_validate)

    def ledger(self, *, per_page: int = DEFAULT_PER_PAGE) -> Iterator[CreditEntry]:
        """Every credit and charge, newest first."""
        return self._pages(LEDGER, CreditEntry.model_validate, per_page)


class Events(SyncResource):
    def list(self, *, per_page: int = DEFAULT_PER_PAGE) -> Iterator[Event]:
        """Every change made on the account (and every refused attempt), newest first."""
        return self._pages(EVENTS, Event.model_validate, per_page)


class AsyncAccountResource(AsyncResource):
    async def get(self) -> Account:
        return await self._call(ACCOUNT, Account.model_validate)

    def ledger(self, *, per_page: int = DEFAULT_PER_PAGE) -> AsyncIterator[CreditEntry]:
        return self._pages(LEDGER, CreditEntry.model_validate, per_page)


class AsyncEvents(AsyncResource):
    def list(self, *, per_page: int = DEFAULT_PER_PAGE) -> AsyncIterator[Event]:
        return self._pages(EVENTS, Event.model_validate, per_page)
