"""`vpsorg audit`: the recorded changes."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.audit import service as audit
from vpsorg.cli.common import in_transaction


def audit_events(
    account: Annotated[int | None, typer.Option(help="Only this account's events.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
) -> None:
    """Recorded changes, newest first: API writes (refusals too) and operators' commands."""
    from vpsorg.audit import repository

    async def work(session: AsyncSession) -> list[str]:
        return audit.table(await repository.latest(session, account, limit))

    typer.echo("\n".join(in_transaction(work)))
