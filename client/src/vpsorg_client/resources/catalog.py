"""What a server is made of: plans, OS images and locations (short, unpaginated lists)."""

from __future__ import annotations

from vpsorg_client._http import Request
from vpsorg_client.models import Location, OperatingSystem, Plan
from vpsorg_client.resources._base import AsyncResource, SyncResource

PLANS = Request("GET", "/plans/")
OS_IMAGES = Request("GET", "/os/")
LOCATIONS = Request("GET", "/locations/")


class Plans(SyncResource):
    def list(self) -> list[Plan]:
        return self._items(PLANS, Plan.model_validate)


class OsImages(SyncResource):
    def list(self) -> list[OperatingSystem]:
        return self._items(OS_IMAGES, OperatingSystem.model_validate)


class Locations(SyncResource):
    def list(self) -> list[Location]:
        return self._items(LOCATIONS, Location.model_validate)


class AsyncPlans(AsyncResource):
    async def list(self) -> list[Plan]:
        return await self._items(PLANS, Plan.model_validate)


class AsyncOsImages(AsyncResource):
    async def list(self) -> list[OperatingSystem]:
        return await self._items(OS_IMAGES, OperatingSystem.model_validate)


class AsyncLocations(AsyncResource):
    async def list(self) -> list[Location]:
        return await self._items(LOCATIONS, Location.model_validate)
