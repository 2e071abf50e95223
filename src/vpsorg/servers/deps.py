"""``OwnedServer``: the caller's server named by the path, or 404 (for every server route)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from vpsorg.api import PathId
from vpsorg.deps import CurrentAccount, DbSession
from vpsorg.servers import service
from vpsorg.servers.models import Server


async def _owned_server(account: CurrentAccount, session: DbSession, server_id: PathId) -> Server:
    return await service.get_server(session, account, server_id)


OwnedServer = Annotated[Server, Depends(_owned_server)]
