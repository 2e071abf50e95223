"""``vps plan list``, ``vps os list``, ``vps location list``: what a server is made of."""

from __future__ import annotations

import typer

from vpsorg_client.cli.common import Column, OutputOption, make_client, show_list

plans = typer.Typer(help="Server plans and their prices.", no_args_is_help=True)
images = typer.Typer(help="Operating system images.", no_args_is_help=True)
locations = typer.Typer(help="Data-center locations.", no_args_is_help=True)

PLAN_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("NAME", "name"),
    ("VCPUS", "vcpus"),
    ("MEMORY MB", "memory"),
    ("DISK GB", "storage"),
    ("TRAFFIC GB", "bandwidth"),
    ("HOURLY", "price_hourly"),
    ("MONTHLY", "price_monthly"),
    ("AVAILABLE", "available"),
]
OS_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("NAME", "name"),
    ("SLUG", "slug"),
    ("AVAILABLE", "available"),
]
LOCATION_COLUMNS: list[Column] = [("CODE", "code"), ("NAME", "name"), ("AVAILABLE", "available")]


@plans.command("list")
def list_plans(output: OutputOption = None) -> None:
    """Every plan."""
    with make_client() as client:
        show_list(client.plans.list(), PLAN_COLUMNS, output)


@images.command("list")
def list_images(output: OutputOption = None) -> None:
    """Every OS image."""
    with make_client() as client:
        show_list(client.os_images.list(), OS_COLUMNS, output)


@locations.command("list")
def list_locations(output: OutputOption = None) -> None:
    """Every location."""
    with make_client() as client:
        show_list(client.locations.list(), LOCATION_COLUMNS, output)
