"""`vpsorg audit`: the recorded changes."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.audit.models import Actor, AuditEvent
from vpsorg.cli.common import JsonOption, in_transaction, print_json, print_table
from vpsorg.clock import isoformat

HEADERS = (
    "ID",
    "TIME",
    "ACCOUNT",
    "ACTOR",
    "ADDRESS",
    "STATUS",
    "OUTCOME",
    "RESOURCE",
    "ACTION",
    "REQUEST (ERROR CODE)",
    "REQUEST ID",
)


def audit_events(
    account: Annotated[int | None, typer.Option(help="Only this account's events.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Recorded changes, newest first: API writes (refusals too) and operators' commands."""
    from vpsorg.audit import repository

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        return [_record(event) for event in await repository.latest(session, account, limit)]

    events = in_transaction(work)
    if as_json:
        print_json(events)
        return
    print_table(HEADERS, [_row(e) for e in events])


def _record(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "created_at": isoformat(e.created_at),
        "account_id": e.account_id,
        "actor": e.actor,
        "token_id": e.token_id,
        "client_address": e.client_address,
        "request_id": e.request_id,
        "method": e.method,
        "path": e.path,
        "resource": e.resource,
        "action_id": e.action_id,
        "status": e.status,
        "outcome": e.outcome,
        "error_code": e.error_code,
    }


def _row(e: dict[str, Any]) -> list[object]:
    actor = f"token:{e['token_id']}" if e["actor"] == Actor.TOKEN else e["actor"]
    code = f" ({e['error_code']})" if e["error_code"] else ""
    return [
        e["id"],
        e["created_at"],
        e["account_id"],
        actor,
        e["client_address"],
        e["status"],
        e["outcome"],
        e["resource"],
        e["action_id"],
        f"{e['method']} {e['path']}{code}",
        f"[{e['request_id']}]",
    ]
