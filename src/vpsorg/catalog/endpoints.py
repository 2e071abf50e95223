"""Discovery of plans, OS images and locations, and the caller's SSH keys."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from vpsorg.accounts.models import MICROS
from vpsorg.api import PathId, error_responses
from vpsorg.billing.pricing import monthly_price_micros
from vpsorg.catalog import repository, service
from vpsorg.catalog.models import Plan, SshKey
from vpsorg.catalog.schemas import (
    CatalogList,
    LocationOut,
    OperatingSystemOut,
    PlanOut,
    SshKeyCreate,
    SshKeyOut,
)
from vpsorg.deps import CurrentAccount, DbSession

router = APIRouter(prefix="/api/v1", tags=["catalog"])


def plan_out(plan: Plan) -> PlanOut:
    hourly = plan.price_hourly_micros / MICROS
    return PlanOut(
        id=plan.id, name=plan.name, vcpus=plan.vcpus, memory=plan.memory_mb,
        storage=plan.storage_gb, bandwidth=plan.bandwidth_gb, price_hourly=round(hourly, 6),
        price_monthly=round(monthly_price_micros(plan) / MICROS, 2), available=plan.available,
    )  # fmt: skip


def key_out(key: SshKey) -> SshKeyOut:
    return SshKeyOut.model_validate(key, from_attributes=True)


@router.get("/plans/", response_model=CatalogList[PlanOut], responses=error_responses(401))
async def list_plans(_account: CurrentAccount, session: DbSession) -> CatalogList[PlanOut]:
    plans = [plan_out(p) for p in await repository.list_plans(session)]
    return CatalogList[PlanOut](count=len(plans), results=plans)


@router.get("/os/", response_model=CatalogList[OperatingSystemOut], responses=error_responses(401))
async def list_operating_systems(
    _account: CurrentAccount, session: DbSession
) -> CatalogList[OperatingSystemOut]:
    items = [
        OperatingSystemOut.model_validate(o, from_attributes=True)
        for o in await repository.list_operating_systems(session)
    ]
    return CatalogList[OperatingSystemOut](count=len(items), results=items)


@router.get("/locations/", response_model=CatalogList[LocationOut], responses=error_responses(401))
async def list_locations(_account: CurrentAccount, session: DbSession) -> CatalogList[LocationOut]:
    items = [
        LocationOut.model_validate(loc, from_attributes=True)
        for loc in await repository.list_locations(session)
    ]
    return CatalogList[LocationOut](count=len(items), results=items)


@router.get("/ssh-keys/", response_model=CatalogList[SshKeyOut], responses=error_responses(401))
async def list_ssh_keys(account: CurrentAccount, session: DbSession) -> CatalogList[SshKeyOut]:
    keys = [key_out(k) for k in await repository.list_ssh_keys(session, account.id)]
    return CatalogList[SshKeyOut](count=len(keys), results=keys)


@router.post(
    "/ssh-keys/",
    status_code=status.HTTP_201_CREATED,
    response_model=SshKeyOut,
    responses=error_responses(400, 401, 409, 413, 415),
)
async def create_ssh_key(
    body: SshKeyCreate, account: CurrentAccount, session: DbSession
) -> SshKeyOut:
    return key_out(await service.create_ssh_key(session, account, body))


@router.get("/ssh-keys/{key_id}/", response_model=SshKeyOut, responses=error_responses(401, 404))
async def get_ssh_key(key_id: PathId, account: CurrentAccount, session: DbSession) -> SshKeyOut:
    return key_out(await service.get_ssh_key(session, account, key_id))


@router.delete(
    "/ssh-keys/{key_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404),
)
async def delete_ssh_key(key_id: PathId, account: CurrentAccount, session: DbSession) -> Response:
    await service.delete_ssh_key(session, await service.get_ssh_key(session, account, key_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
