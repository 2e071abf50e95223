"""`vpsorg simulator`: the simulator driver's fault injection."""

from __future__ import annotations

from typing import Annotated

import typer

from vpsorg.cli.common import settings

app = typer.Typer(help="The simulator driver.", no_args_is_help=True)


@app.command("fail")
def simulator_fail(
    operation: Annotated[str, typer.Argument(help="create, start, stop, reboot or delete")],
    machine: Annotated[str | None, typer.Option(help="Only this machine (vps-ID).")] = None,
    message: Annotated[str, typer.Option(help="The error to report.")] = "simulated failure",
    times: Annotated[int, typer.Option(min=1)] = 1,
    retriable: Annotated[bool, typer.Option(help="Fail as a retriable error.")] = False,
) -> None:
    """Make the simulator fail the next OPERATION (for testing failure handling)."""
    from vpsorg.drivers.simulator import SimulatorDriver

    configured = settings()
    driver = SimulatorDriver(configured.simulator_state_dir, configured.simulator_delay)
    try:
        driver.inject_fault(operation, message, machine=machine, times=times, retriable=retriable)
    except ValueError as exc:
        typer.echo(f"vpsorg: {exc}", err=True)
        raise typer.Exit(2) from None
