"""What the libvirt and real-guest tests need, and the one rule for when it is missing.

On a developer's machine without libvirt these tests skip, saying why. With
``VPSORG_REQUIRE_LIBVIRT`` set (CI: .ci/run, after .ci/setup-libvirt) a missing piece
fails the run instead: CI never passes by skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, NoReturn

import pytest

from tests.e2e.processes import Installation
from tests.guest.image import Guest, GuestUnavailable, build_guest


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("VPSORG_REQUIRE_LIBVIRT"):
        pytest.fail(f"VPSORG_REQUIRE_LIBVIRT is set but {reason}", pytrace=False)
    pytest.skip(reason)


def require_libvirt_binding() -> Any:
    """The ``libvirt`` module."""
    try:
        import libvirt
    except ImportError as exc:
        unavailable(f"libvirt-python is not installed ({exc}): pip install 'vpsorg[libvirt]'")
    return libvirt


def require_libvirtd(uri: str) -> None:
    require_libvirt_binding()
    if shutil.which("virsh") is None:
        unavailable("virsh is not installed (Debian: libvirt-clients; see .ci/setup-libvirt)")
    answer = subprocess.run(["virsh", "-c", uri, "version"], capture_output=True, text=True)
    if answer.returncode != 0:
        unavailable(f"libvirtd does not answer on {uri}: {answer.stderr.strip()}")


def require_guest() -> Guest:
    try:
        return build_guest()
    except GuestUnavailable as exc:
        unavailable(f"the test guest cannot be built here: {exc}")


def libvirt_driver(installation: Installation) -> Any:
    """A driver configured like the installation's, for looking behind the API."""
    from vpsorg.drivers.libvirt import LibvirtDriver

    env = installation.env
    return LibvirtDriver(
        env["VPSORG_LIBVIRT_URI"], pool=env["VPSORG_LIBVIRT_POOL"],
        pool_path=env["VPSORG_LIBVIRT_POOL_PATH"], network=env.get("VPSORG_LIBVIRT_NETWORK"),
    )  # fmt: skip
