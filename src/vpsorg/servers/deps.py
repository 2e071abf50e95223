"""``OwnedServer``: the caller's server named by the path, or 404 (for every server route)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Row

from vpsorg.api import CANONICAL_ID, PathId
from vpsorg.auth.tokens import find_caller
from vpsorg.db import single_statement_reads
from vpsorg.deps import (
    UNKNOWN_TOKEN,
    CurrentAccount,
    DbSession,
    bearer_token_hash,
    note_caller,
)
from vpsorg.errors import NotAuthenticated, NotFound
from vpsorg.schemas import MAX_ID
from vpsorg.servers import repository, service
from vpsorg.servers.models import Server

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime


async def _owned_server(account: CurrentAccount, session: DbSession, server_id: PathId) -> Server:
    return await service.get_server(session, account, server_id)


OwnedServer = Annotated[Server, Depends(_owned_server)]


INVALID_PATH_ID = "Not found: the id in the path is not a valid id."
"""What ``errors`` answers for a path id that FastAPI's validation refuses."""


async def owned_server_view(request: Request) -> Row[*tuple[Any, ...]]:
    """The caller and its server in one statement, outside any transaction (see
    ``repository.get_owned_view``): 401 for a token that is not live, 404 for a server that
    is not the caller's. Authentication comes first, as for every route: the path's id is
    read raw here, and one that is not an id is a 404 once the caller is known, as FastAPI's
    validation of ``PathId`` answers it.
    """
    token_hash = bearer_token_hash(request)
    text = request.path_params["server_id"]
    runtime: Runtime = request.app.state.runtime
    if not CANONICAL_ID.fullmatch(text) or int(text) > MAX_ID:
        caller = await single_statement_reads(
            runtime.read_engine, lambda connection: find_caller(connection, token_hash)
        )
        note_caller(request, caller)
        raise NotFound(INVALID_PATH_ID)
    server_id = int(text)
    found = await single_statement_reads(
        runtime.read_engine,
        lambda connection: repository.get_owned_view(connection, token_hash, server_id),
    )
    if found is None:
        raise NotAuthenticated(UNKNOWN_TOKEN)
    caller, row = found
    note_caller(request, caller)
    if row is None:
        raise NotFound(f"Server {server_id} not found.")
    return row


OwnedServerView = Annotated[Row[*tuple[Any, ...]], Depends(owned_server_view)]
"""The caller's server as a row of ``repository.VIEW_COLUMNS`` (for GET: no ORM, one
statement with the authentication); 401 and 404 as ``OwnedServer``."""
