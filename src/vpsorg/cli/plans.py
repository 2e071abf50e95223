"""`vpsorg plans`: the plans customers choose from, and their prices."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts import service as accounts
from vpsorg.accounts.models import MICROS
from vpsorg.audit import service as audit
from vpsorg.billing import service as billing
from vpsorg.billing.pricing import monthly_price_micros
from vpsorg.catalog import service as catalog
from vpsorg.catalog.models import Plan
from vpsorg.cli.common import JsonOption, fail, in_transaction, print_records

app = typer.Typer(help="Plans and their prices.", no_args_is_help=True)

PLAN_COLUMNS = {
    "id": "ID",
    "name": "NAME",
    "vcpus": "VCPUS",
    "memory_mb": "MEMORY MB",
    "storage_gb": "DISK GB",
    "bandwidth_gb": "TRANSFER GB",
    "price_hourly": "PER HOUR",
    "price_monthly": "MONTH AT MOST",
    "available": "AVAILABLE",
}


def plan_record(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "name": plan.name,
        "vcpus": plan.vcpus,
        "memory_mb": plan.memory_mb,
        "storage_gb": plan.storage_gb,
        "bandwidth_gb": plan.bandwidth_gb,
        "price_hourly": round(plan.price_hourly_micros / MICROS, 6),
        "price_monthly": round(monthly_price_micros(plan) / MICROS, 2),
        "available": plan.available,
    }


@app.command("list")
def plans_list(as_json: JsonOption = False) -> None:
    """Every plan, disabled ones too (AVAILABLE no: refused for new servers)."""
    from vpsorg.catalog.repository import list_plans

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        return [plan_record(plan) for plan in await list_plans(session)]

    print_records(in_transaction(work), PLAN_COLUMNS, as_json=as_json)


@app.command("add")
def plans_add(
    name: str,
    vcpus: Annotated[int, typer.Option(min=1, help="Virtual CPUs.")],
    memory_mb: Annotated[int, typer.Option(min=1, help="Memory in MB.")],
    disk_gb: Annotated[int, typer.Option(min=1, help="Disk in GB.")],
    bandwidth_gb: Annotated[int, typer.Option(min=1, help="Transfer per month in GB.")],
    price: Annotated[float, typer.Option(min=0, help="Credits per hour.")],
) -> None:
    """Add a plan, available at once; prints its id."""
    size = catalog.PlanSize(vcpus, memory_mb, disk_gb, bandwidth_gb)

    async def work(session: AsyncSession) -> int:
        plan = await catalog.add_plan(session, name, size, accounts.to_micros(price))
        command = (
            f"plans add {shlex.quote(name)} --vcpus {vcpus} --memory-mb {memory_mb} "
            f"--disk-gb {disk_gb} --bandwidth-gb {bandwidth_gb} --price {price:g}"
        )
        await audit.record_operator_change(session, command, resource=f"plan:{plan.id}")
        return plan.id

    typer.echo(in_transaction(work))


@app.command("update")
def plans_update(
    plan_id: int,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    vcpus: Annotated[int | None, typer.Option(min=1)] = None,
    memory_mb: Annotated[int | None, typer.Option(min=1)] = None,
    disk_gb: Annotated[int | None, typer.Option(min=1)] = None,
    bandwidth_gb: Annotated[int | None, typer.Option(min=1)] = None,
    price: Annotated[
        float | None, typer.Option(min=0, help="Credits per hour, for hours that start later.")
    ] = None,
) -> None:
    """Rename, reprice, or resize a plan (resizing only while no server uses it)."""
    sized = {
        "vcpus": vcpus,
        "memory_mb": memory_mb,
        "storage_gb": disk_gb,
        "bandwidth_gb": bandwidth_gb,
    }
    if name is None and price is None and all(v is None for v in sized.values()):
        fail("nothing to change: give --name, --price or a size option", 2)

    async def work(session: AsyncSession) -> Plan:
        plan = await catalog.get_plan(session, plan_id)
        size = None
        if any(v is not None for v in sized.values()):
            current = {f: getattr(plan, f) for f in sized}
            size = catalog.PlanSize(**{f: current[f] if v is None else v for f, v in sized.items()})
        plan = await catalog.update_plan(session, plan_id, name, size)
        if price is not None:
            plan = await billing.set_plan_price(session, plan_id, accounts.to_micros(price))
        options = {
            "--vcpus": vcpus,
            "--memory-mb": memory_mb,
            "--disk-gb": disk_gb,
            "--bandwidth-gb": bandwidth_gb,
        }
        changes = [f"{option} {v}" for option, v in options.items() if v is not None]
        changes += [f"--name {shlex.quote(name)}"] if name is not None else []
        changes += [f"--price {price:g}"] if price is not None else []
        command = f"plans update {plan_id} {' '.join(changes)}"
        await audit.record_operator_change(session, command, resource=f"plan:{plan_id}")
        return plan

    plan = in_transaction(work)
    typer.echo(
        f"plan {plan.id} {plan.name!r}: {plan.vcpus} vCPUs, {plan.memory_mb} MB, "
        f"{plan.storage_gb} GB, {plan.bandwidth_gb} GB transfer, "
        f"{plan.price_hourly_micros / MICROS:g} credits per hour",
        err=True,
    )


def _set_available(plan_id: int, available: bool, verb: str) -> None:
    async def work(session: AsyncSession) -> None:
        await catalog.set_plan_available(session, plan_id, available)
        await audit.record_operator_change(
            session, f"plans {verb} {plan_id}", resource=f"plan:{plan_id}"
        )

    in_transaction(work)
    typer.echo(f"plan {plan_id}: {verb}d", err=True)


@app.command("disable")
def plans_disable(plan_id: int) -> None:
    """Refuse the plan for new servers; servers on it keep it and its price."""
    _set_available(plan_id, False, "disable")


@app.command("enable")
def plans_enable(plan_id: int) -> None:
    """Offer a disabled plan again."""
    _set_available(plan_id, True, "enable")


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

    in_transaction(work)
    typer.echo(f"plan {plan_id} now costs {hourly:g} credits per hour", err=True)
