"""The caller's API tokens: list, create (shown once), revoke."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from vpsorg.api import PageNumber, PathId, PerPage, error_responses, paginated
from vpsorg.auth import service, tokens
from vpsorg.auth.schemas import TokenCreate, TokenCreated, TokenList, TokenOut
from vpsorg.deps import CurrentCredential, DbSession

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.get("/", response_model=TokenList, responses=error_responses(400, 401))
async def list_tokens(
    request: Request,
    caller: CurrentCredential,
    session: DbSession,
    page: PageNumber = 1,
    per_page: PerPage = 50,
) -> TokenList:
    """The account's live tokens, newest first (never the tokens themselves)."""
    total, rows = await tokens.list_tokens(
        session, caller.account.id, (page - 1) * per_page, per_page
    )
    results = [TokenOut.from_token(row) for row in rows]
    return paginated(TokenList, request, page, per_page, total, results)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    responses=error_responses(400, 401, 403),
)
async def create_token(
    body: TokenCreate, caller: CurrentCredential, session: DbSession
) -> TokenCreated:
    """A new token for the account, with no more scope and no later expiry than the caller's."""
    row, token = await service.mint(session, caller, body)
    return TokenCreated(**TokenOut.from_token(row).model_dump(), token=token)


@router.delete(
    "/{token_id}/", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401, 403, 404)
)
async def revoke_token(token_id: PathId, caller: CurrentCredential, session: DbSession) -> Response:
    """Revoke one of the account's tokens (the calling one too)."""
    await service.revoke(session, caller, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
