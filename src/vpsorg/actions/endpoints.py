"""Actions a client can wait on: one, several at once, a server's history, long-polling."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query, Request
from pydantic import Field

from vpsorg.actions import repository
from vpsorg.actions.models import Action
from vpsorg.actions.schemas import FINISHED, ActionList, ActionOut
from vpsorg.api import PageNumber, PathId, PerPage, error_responses, paginated
from vpsorg.deps import BrieflyAuthenticatedAccount, CurrentAccount, DbSession
from vpsorg.errors import InvalidParameters, NotFound
from vpsorg.schemas import MAX_ID
from vpsorg.servers import service as servers

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["actions"])

MAX_WAIT_SECONDS = 60.0


@router.get(
    "/actions/{action_id}/", response_model=ActionOut, responses=error_responses(400, 401, 404)
)
async def get_action(
    request: Request,
    action_id: PathId,
    account: BrieflyAuthenticatedAccount,
    wait: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the action to finish"),
    ] = 0,
) -> ActionOut:
    """One action. With `wait`, answers as soon as it finishes (or when `wait` runs out)."""
    runtime = request.app.state.runtime
    deadline = time.monotonic() + wait
    # Watching starts before the first read, so a finish between the read and the wait
    # still wakes this request. Nothing is held while it waits: the process's notifier
    # wakes it (a notification, or its one batched re-check for every waiting request).
    with runtime.notifier.watch(action_id) as waiter:
        action = await _read(runtime, account.id, action_id)
        while True:
            remaining = deadline - time.monotonic()
            if action.status in FINISHED or remaining <= 0:
                return ActionOut.from_action(action)
            await waiter.wait(remaining)
            # The notifier usually brings the row it read for every waiter woken with this
            # one; the account was checked by the first read and an action never moves.
            fresh = waiter.take()
            action = fresh if fresh is not None else await _read(runtime, account.id, action_id)


async def _read(runtime: Runtime, account_id: int, action_id: int) -> Action:
    async with runtime.read_sessions() as session:  # a short read; nothing held while waiting
        action = await repository.get_owned(session, account_id, action_id)
    if action is None:
        raise NotFound(f"Action {action_id} not found.")
    return action


@router.get("/actions/", response_model=ActionList, responses=error_responses(400, 401))
async def list_actions(
    request: Request,
    account: CurrentAccount,
    session: DbSession,
    id: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None,
        Query(description="Only these actions: ?id=1&id=2 (at most 100)"),
    ] = None,
    page: PageNumber = 1,
    per_page: PerPage = 50,
) -> ActionList:
    """The account's actions, newest first; or exactly the ones named with `id`."""
    if id is not None:
        if len(id) > 100:
            raise InvalidParameters.field("id", "Give 1 to 100 positive action ids.")
        actions = await repository.get_many_owned(session, account.id, id)
        return ActionList(
            count=len(actions),
            next=None,
            previous=None,
            results=[ActionOut.from_action(a) for a in actions],
        )
    total, actions = await repository.history(
        session, account.id, None, (page - 1) * per_page, per_page
    )
    results = [ActionOut.from_action(a) for a in actions]
    return paginated(ActionList, request, page, per_page, total, results)


@router.get(
    "/servers/{server_id}/actions/", response_model=ActionList, responses=error_responses(401, 404)
)
async def list_server_actions(
    request: Request,
    server_id: PathId,
    account: CurrentAccount,
    session: DbSession,
    page: PageNumber = 1,
    per_page: PerPage = 50,
) -> ActionList:
    """A server's action history, newest first."""
    await servers.get_server(session, account, server_id)
    total, actions = await repository.history(
        session, account.id, server_id, (page - 1) * per_page, per_page
    )
    if not actions and page == 1:
        raise NotFound(f"Server {server_id} not found.")
    results = [ActionOut.from_action(a) for a in actions]
    return paginated(ActionList, request, page, per_page, total, results)
