"""`vpsorg os`: operating system images."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.audit import service as audit
from vpsorg.cli.common import JsonOption, fail, in_transaction, print_records, settings

if TYPE_CHECKING:
    from vpsorg.catalog.images import Progress
    from vpsorg.catalog.models import OperatingSystem

app = typer.Typer(help="Operating system images.", no_args_is_help=True)

OS_COLUMNS = {
    "id": "ID",
    "name": "NAME",
    "slug": "SLUG",
    "available": "AVAILABLE",
    "image": "IMAGE",
    "kernel": "KERNEL",
}


def os_record(os: OperatingSystem) -> dict[str, Any]:
    return {
        "id": os.id,
        "name": os.name,
        "slug": os.slug,
        "available": os.available,
        "image": os.image,
        "kernel": os.kernel,
        "initrd": os.initrd,
        "cmdline": os.cmdline,
    }


Sha256Option = Annotated[
    str | None, typer.Option("--sha256", help="The image's SHA-256; a mismatch stores nothing.")
]


@app.command("add")
def os_add(
    name: str,
    image: Annotated[str, typer.Option(help="Base disk image (qcow2 or raw): a path or a URL.")],
    sha256: Sha256Option = None,
    kernel: Annotated[str | None, typer.Option(help="Kernel for direct kernel boot.")] = None,
    initrd: Annotated[str | None, typer.Option(help="Initrd for direct kernel boot.")] = None,
    cmdline: Annotated[str | None, typer.Option(help="Kernel command line.")] = None,
) -> None:
    """Register an operating system image; prints its id.

    A URL is downloaded into VPSORG_IMAGE_DIR and stored by content, as <sha256>.<format>
    (with --sha256, an image already stored is not downloaded again). Images on this machine
    are checked with `qemu-img info`: only qcow2 and raw disk images are taken.
    """
    from vpsorg.catalog import service as catalog

    image = _checked_image(image, sha256)

    async def work(session: AsyncSession) -> int:
        os = await catalog.add_operating_system(
            session, name, image, kernel=kernel, initrd=initrd, cmdline=cmdline
        )
        command = f"os add {shlex.quote(name)} --image {shlex.quote(image)}"
        await audit.record_operator_change(session, command, resource=f"os:{os.id}")
        return os.id

    typer.echo(in_transaction(work))


@app.command("update")
def os_update(
    os_id: int,
    name: Annotated[str | None, typer.Option(help="A new name (the slug stays).")] = None,
    image: Annotated[str | None, typer.Option(help="A new base image: a path or a URL.")] = None,
    sha256: Sha256Option = None,
    kernel: Annotated[str | None, typer.Option(help='Kernel; "" for none.')] = None,
    initrd: Annotated[str | None, typer.Option(help='Initrd; "" for none.')] = None,
    cmdline: Annotated[str | None, typer.Option(help='Kernel command line; "" for none.')] = None,
) -> None:
    """Change an OS for new servers and rebuilds; existing servers keep their disks."""
    from vpsorg.catalog import service as catalog

    if all(v is None for v in (name, image, kernel, initrd, cmdline)):
        fail("nothing to change: give --name, --image, --kernel, --initrd or --cmdline", 2)
    checked = None if image is None else _checked_image(image, sha256)

    async def work(session: AsyncSession) -> OperatingSystem:
        os = await catalog.update_operating_system(
            session, os_id, name=name, image=checked, kernel=kernel, initrd=initrd, cmdline=cmdline
        )
        changes = [f"--name {shlex.quote(name)}"] if name is not None else []
        changes += [f"--image {shlex.quote(checked)}"] if checked is not None else []
        command = " ".join(["os update", str(os_id), *changes])
        await audit.record_operator_change(session, command, resource=f"os:{os_id}")
        return os

    os = in_transaction(work)
    typer.echo(f"os {os.id} {os.name!r}: image {os.image}", err=True)


@app.command("list")
def os_list(as_json: JsonOption = False) -> None:
    """Operating systems with their images (AVAILABLE no: refused for new servers)."""
    from vpsorg.catalog.repository import list_operating_systems

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        return [os_record(os) for os in await list_operating_systems(session)]

    print_records(in_transaction(work), OS_COLUMNS, as_json=as_json)


def _set_available(os_id: int, available: bool, verb: str) -> None:
    from vpsorg.catalog import service as catalog

    async def work(session: AsyncSession) -> None:
        await catalog.set_operating_system_available(session, os_id, available)
        await audit.record_operator_change(session, f"os {verb} {os_id}", resource=f"os:{os_id}")

    in_transaction(work)
    typer.echo(f"os {os_id}: {verb}d", err=True)


@app.command("disable")
def os_disable(os_id: int) -> None:
    """Refuse the OS for new servers and rebuilds; servers running it are left alone."""
    _set_available(os_id, False, "disable")


@app.command("enable")
def os_enable(os_id: int) -> None:
    """Offer a disabled OS again."""
    _set_available(os_id, True, "enable")


@app.command("remove")
def os_remove(os_id: int) -> None:
    """Forget an OS that no server (deleted ones included) was made from.

    The image file is left where it is: other operating systems may share it.
    """
    from vpsorg.catalog import service as catalog

    async def work(session: AsyncSession) -> str:
        os = await catalog.remove_operating_system(session, os_id)
        await audit.record_operator_change(session, f"os remove {os_id}", resource=f"os:{os_id}")
        return os.name

    name = in_transaction(work)
    typer.echo(f"os {os_id} {name!r}: removed", err=True)


def _checked_image(image: str, sha256: str | None) -> str:
    """The image to record: a URL downloaded and stored by content, or a checked path."""
    from vpsorg.catalog import images

    try:
        if images.is_url(image):
            image_dir = settings().image_dir
            typer.echo(f"downloading {image} into {image_dir}", err=True)
            with _download_progress() as progress:
                return str(images.fetch(image, image_dir, sha256=sha256, progress=progress))
        path = Path(image)
        if not path.exists():
            if sha256:
                fail(f"--sha256 needs the image on this machine; {image} is not here")
            typer.echo(
                f"note: image {image} is not on this machine; "
                "it must exist at that path on every host",
                err=True,
            )
            return image
        if sha256 and images.file_sha256(path) != images.check_sha256(sha256):
            fail(f"{image} does not have SHA-256 {sha256}")
        images.inspect(path)
        return image
    except images.ImageError as exc:
        fail(str(exc))


@contextmanager
def _download_progress() -> Iterator[Progress]:
    """A rich progress bar on stderr (size, speed, time left) fed by ``images.fetch``."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as Bar

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Bar(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("download", total=None)

        def update(received: int, total: int | None) -> None:
            bar.update(task, completed=received, total=total)

        yield update
