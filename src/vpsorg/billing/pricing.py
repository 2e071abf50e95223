"""What a server costs: its hour price and the monthly cap. The one place prices are computed."""

from __future__ import annotations

from vpsorg.catalog.models import Plan

BACKUPS_SURCHARGE = 0.20
"""Backups add 20% to the plan's hourly price (as DigitalOcean and Vultr charge)."""

HOURS_PER_MONTH = 730
"""A server pays at most this many hours of its price per calendar month (``price_monthly``)."""


def hour_price_micros(plan: Plan, backups_enabled: bool) -> int:
    """One hour of a server of this plan, with or without backups."""
    price = plan.price_hourly_micros
    if backups_enabled:
        price += round(price * BACKUPS_SURCHARGE)
    return price


def monthly_price_micros(plan: Plan) -> int:
    """The plan's monthly cap without backups: what ``price_monthly`` publishes."""
    return plan.price_hourly_micros * HOURS_PER_MONTH


def capped_charge_micros(hour_price: int, paid_this_month: int) -> int:
    """What an hour costs when the server already paid ``paid_this_month`` in its month.

    The cap is 730 hours of the price in force for this hour, so a price change mid-month
    moves the cap with it; an hour past the cap is free.
    """
    return max(0, min(hour_price, hour_price * HOURS_PER_MONTH - paid_this_month))


def snapshot_hour_micros(size_gb: int, price_gb_hour_micros: int) -> int:
    """One hour of a snapshot: its size in whole GB (rounded up) at its price per GB-hour."""
    return size_gb * price_gb_hour_micros
