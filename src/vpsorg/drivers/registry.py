"""Drivers by name. ``VPSORG_DRIVER`` picks one; it is probed once at start-up."""

from __future__ import annotations

from collections.abc import Callable

from vpsorg.config import Settings
from vpsorg.drivers.base import Driver
from vpsorg.drivers.simulator import SimulatorDriver


def _simulator(settings: Settings) -> Driver:
    return SimulatorDriver(settings.simulator_state_dir, settings.simulator_delay)


DRIVERS: dict[str, Callable[[Settings], Driver]] = {"simulator": _simulator}


def create_driver(settings: Settings) -> Driver:
    try:
        factory = DRIVERS[settings.driver]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise ValueError(f"unknown driver {settings.driver!r}; known drivers: {known}") from None
    return factory(settings)
