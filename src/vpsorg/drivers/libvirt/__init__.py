"""The libvirt driver (``VPSORG_DRIVER=libvirt``); needs ``pip install -e '.[libvirt]'``.

``LibvirtDriver`` is imported on first use, so the XML and seed builders (``domain``,
``seed``) work, and are tested, without the libvirt binding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vpsorg.drivers.libvirt.driver import LibvirtDriver

__all__ = ["LibvirtDriver"]


def __getattr__(name: str) -> object:
    if name == "LibvirtDriver":
        from vpsorg.drivers.libvirt.driver import LibvirtDriver

        return LibvirtDriver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
