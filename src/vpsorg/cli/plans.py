"""`vpsorg plans`: plans and their prices."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts import service as accounts
from vpsorg.audit import service as audit
from vpsorg.billing import service as billing
from vpsorg.cli.common import in_transaction, or_exit

app = typer.Typer(help="Plans and their prices.", no_args_is_help=True)


@app.command("price")
def plans_price(
    plan_id: int, hourly: Annotated[float, typer.Argument(min=0, help="Credits per hour.")]
) -> None:
    """Set a plan's hourly price. Hours already started keep the old price."""

    async def work(session: AsyncSession) -> None:
        await billing.set_plan_price(session, plan_id, accounts.to_micros(hourly))
        await audit.record_operator_change(
            session, f"plans price {plan_id} {hourly:g}", resource=f"plan:{plan_id}"
        )

    in_transaction(or_exit(work))
    typer.echo(f"plan {plan_id} now costs {hourly:g} credits per hour", err=True)
