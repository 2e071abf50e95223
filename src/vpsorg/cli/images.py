"""`vpsorg os`: operating system images."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.audit import service as audit
from vpsorg.cli.common import in_transaction, or_exit, settings

app = typer.Typer(help="Operating system images.", no_args_is_help=True)


@app.command("add")
def os_add(
    name: str,
    image: Annotated[str, typer.Option(help="Base disk image (qcow2 or raw): a path or a URL.")],
    kernel: Annotated[str | None, typer.Option(help="Kernel for direct kernel boot.")] = None,
    initrd: Annotated[str | None, typer.Option(help="Initrd for direct kernel boot.")] = None,
    cmdline: Annotated[str | None, typer.Option(help="Kernel command line.")] = None,
) -> None:
    """Register an operating system image; prints its id. A URL is downloaded once."""
    from vpsorg.catalog import images
    from vpsorg.catalog import service as catalog

    configured = settings()
    if images.is_url(image):
        typer.echo(f"downloading {image} into {configured.image_dir}", err=True)
        try:
            image = str(images.fetch(image, configured.image_dir))
        except OSError as exc:
            typer.echo(f"vpsorg: cannot download {image}: {exc}", err=True)
            raise typer.Exit(1) from None
    for label, path in (("image", image), ("kernel", kernel), ("initrd", initrd)):
        if path is not None and not Path(path).exists():
            typer.echo(
                f"note: {label} {path} is not on this machine; "
                "it must exist at that path on every host",
                err=True,
            )

    async def work(session: AsyncSession) -> int:
        os = await catalog.add_operating_system(
            session, name, image, kernel=kernel, initrd=initrd, cmdline=cmdline
        )
        command = f"os add {shlex.quote(name)} --image {shlex.quote(image)}"
        await audit.record_operator_change(session, command, resource=f"os:{os.id}")
        return os.id

    typer.echo(in_transaction(or_exit(work)))


@app.command("list")
def os_list() -> None:
    """Operating systems with their images."""
    from vpsorg.catalog.repository import list_operating_systems

    async def work(session: AsyncSession) -> list[str]:
        rows = await list_operating_systems(session)
        lines = [f"{'ID':>4}  {'NAME':<24} {'SLUG':<20} IMAGE"]
        for os in rows:
            boot = f" (kernel {os.kernel})" if os.kernel else ""
            lines.append(f"{os.id:>4}  {os.name:<24} {os.slug:<20} {os.image or '-'}{boot}")
        return lines

    typer.echo("\n".join(in_transaction(work)))
