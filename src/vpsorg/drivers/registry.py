"""Drivers by name. ``VPSORG_DRIVER`` picks one; it is probed once at start-up."""

from __future__ import annotations

from collections.abc import Callable

from vpsorg.config import Settings
from vpsorg.drivers.base import Driver
from vpsorg.drivers.simulator import SimulatorDriver


def _simulator(settings: Settings) -> Driver:
    return SimulatorDriver(settings.simulator_state_dir, settings.simulator_delay)


class DriverUnavailable(RuntimeError):
    """The configured driver cannot be loaded here (a missing binding, say)."""


def _libvirt(settings: Settings) -> Driver:
    # Imported here: the product runs (with the simulator) without libvirt-python installed.
    try:
        from vpsorg.drivers.libvirt import LibvirtDriver
    except ModuleNotFoundError as exc:
        if exc.name != "libvirt":
            raise
        raise DriverUnavailable(
            "the libvirt driver needs the libvirt-python binding: "
            "pip install -e '.[libvirt]' in a checkout (building it needs, on Debian, "
            "apt-get install libvirt-dev pkg-config)"
        ) from exc
    return LibvirtDriver(
        settings.libvirt_uri,
        pool=settings.libvirt_pool,
        pool_path=settings.libvirt_pool_path,
        network=settings.libvirt_network,
        domain_type=settings.libvirt_domain_type,
        backup_pool=settings.libvirt_backup_pool,
        backup_pool_path=settings.libvirt_backup_pool_path,
    )


DRIVERS: dict[str, Callable[[Settings], Driver]] = {"simulator": _simulator, "libvirt": _libvirt}


def create_driver(settings: Settings) -> Driver:
    try:
        factory = DRIVERS[settings.driver]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise ValueError(f"unknown driver {settings.driver!r}; known drivers: {known}") from None
    return factory(settings)
