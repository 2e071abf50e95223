"""API tokens of the account: list, create (the secret is shown once), revoke."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from vpsorg_client._http import Request
from vpsorg_client.models import CreatedToken, Token, TokenScope
from vpsorg_client.resources._base import DEFAULT_PER_PAGE, AsyncResource, SyncResource, drop_none

LIST = Request("GET", "/tokens/")


def create_request(
    name: str | None, scope: TokenScope | str | None, expires_in: int | None
) -> Request:
    body = drop_none(name=name, scope=str(scope) if scope else None, expires_in=expires_in)
    return Request("POST", "/tokens/", json=body)


def revoke_request(token_id: int) -> Request:
    return Request("DELETE", f"/tokens/{token_id}/")


class Tokens(SyncResource):
    def list(self, *, per_page: int = DEFAULT_PER_PAGE) -> Iterator[Token]:
        return self._pages(LIST, Token.model_validate, per_page)

    def create(
        self,
        *,
        name: str | None = None,
        scope: TokenScope | str | None = None,
        expires_in: int | None = None,
    ) -> CreatedToken:
        """A new token; ``expires_in`` in seconds (None: never)."""
        return self._call(create_request(name, scope, expires_in), CreatedToken.model_validate)

    def revoke(self, token_id: int) -> None:
        self._send(revoke_request(token_id))


class AsyncTokens(AsyncResource):
    def list(self, *, per_page: int = DEFAULT_PER_PAGE) -> AsyncIterator[Token]:
        return self._pages(LIST, Token.model_validate, per_page)

    async def create(
        self,
        *,
        name: str | None = None,
        scope: TokenScope | str | None = None,
        expires_in: int | None = None,
    ) -> CreatedToken:
        request = create_request(name, scope, expires_in)
        return await self._call(request, CreatedToken.model_validate)

    async def revoke(self, token_id: int) -> None:
        await self._send(revoke_request(token_id))
