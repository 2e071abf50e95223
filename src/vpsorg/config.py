"""All configuration, from ``VPSORG_*`` environment variables, validated at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from limits import RateLimitItem, parse_many
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vpsorg.client_address import IPNetwork, parse_networks


def async_database_url(url: str) -> str:
    """Map the plain URLs people already have onto the async drivers vpsorg uses.

    ``sqlite:///x.db`` -> ``sqlite+aiosqlite:///x.db``;
    ``postgresql://u@h/db`` (or ``postgres://``) -> ``postgresql+asyncpg://u@h/db`` (about
    half psycopg's CPU per statement: README, Benchmarks). URLs naming a driver are kept.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    if scheme == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    if scheme in ("sqlite+aiosqlite", "postgresql+psycopg", "postgresql+asyncpg"):
        return url
    raise ValueError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH or postgresql://..."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VPSORG_", extra="ignore")

    database_url: str = "sqlite:///vpsorg.db"
    driver: str = "simulator"
    simulator_delay: float = Field(default=3.0, ge=0)
    simulator_state_dir: Path = Path(".vpsorg/simulator")
    # The libvirt driver (VPSORG_DRIVER=libvirt). The URI is the host used when a server has
    # no placed host (no hosts registered in its location).
    libvirt_uri: str = "qemu:///system"
    image_dir: Path = Path("/var/lib/vpsorg/base-images")  # where `vpsorg os add URL` downloads
    libvirt_pool: str = "vpsorg"
    libvirt_pool_path: Path = Path("/var/lib/vpsorg/images")
    # Unset: each location's network (`vpsorg locations`). Set: this existing libvirt network
    # for every guest, whatever its location; "": no NIC at all (tests that need no network).
    libvirt_network: str | None = None
    libvirt_domain_type: Literal["auto", "kvm", "qemu"] = "auto"
    # Where backups and snapshots are kept on each host: a dir pool made on first use.
    libvirt_backup_pool: str = "vpsorg-backups"
    libvirt_backup_pool_path: Path = Path("/var/lib/vpsorg/backups")
    stop_timeout: float = Field(default=60.0, gt=0)  # graceful shutdown, then forced off
    reconcile_interval: float = Field(default=30.0, gt=0)

    embedded_worker: bool = True
    worker_concurrency: int = Field(default=4, ge=1, le=256)
    worker_poll_interval: float = Field(default=1.0, gt=0)
    action_lease_seconds: float = Field(default=30.0, gt=0)
    action_max_attempts: int = Field(default=5, ge=1)
    action_retry_base_seconds: float = Field(default=2.0, gt=0)
    usage_interval: float = Field(default=30.0, gt=0)
    metering_interval: float = Field(default=60.0, gt=0)
    # Automatic backups (backups/scheduler.py): one per interval (seconds) per server with
    # backups enabled, the latest `backup_retention` kept; after backups are turned off the
    # automatic ones go `backup_retention` days later. Snapshots cost this per GB-hour.
    backup_interval: float = Field(default=86_400.0, ge=60)
    backup_retention: int = Field(default=7, ge=1, le=1000)
    backup_schedule_interval: float = Field(default=60.0, gt=0)  # how often it looks
    snapshot_price_gb_hour: float = Field(default=0.00002, ge=0)

    # How long a request with an Idempotency-Key may run before a retry may take the key over
    # (its first attempt died): longer than any request takes, short enough to retry soon.
    idempotency_lock_seconds: float = Field(default=60.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Absolute links (next/previous) are built from public_url when it is set; otherwise from
    # the request's Host, which must then be one of allowed_hosts (Django's ALLOWED_HOSTS:
    # "*" is any, ".example.com" a domain and its subdomains). `serve` adds its bind address.
    public_url: str | None = None
    allowed_hosts: list[str] = ["localhost", "127.0.0.1", "[::1]"]
    cors_origins: list[str] = ["*"]
    demo_credits: float = Field(default=100.0, ge=0)
    log_level: str = "info"
    # auto: text on a terminal, one JSON object per line otherwise (vpsorg.logs).
    log_format: Literal["auto", "json", "text"] = "auto"
    # When set, GET /metrics wants "Authorization: Bearer <this>" (vpsorg.observability).
    metrics_token: str | None = None

    # Rate limits (vpsorg/ratelimit): `limits` strings, comma-separated; "" turns them off.
    # Per token; per client address too, with address_rate_limits when set (None: the same).
    rate_limits: str = "250/minute,5000/hour"
    address_rate_limits: str | None = None
    # Proxies whose X-Forwarded-For names the client (CIDRs, comma-separated), for rate
    # limits and uvicorn's view of the client and scheme alike.
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = []
    redis_url: str | None = None  # shares rate limits between processes; None: in memory
    redis_key_prefix: str = "vpsorg"

    # The web panel (vpsorg.panel): a session ends after this long without a request, and
    # in any case this long after its login. Logins: per client address and email, and
    # panel changes: per user, as `limits` strings ("" turns them off).
    panel_session_idle_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    panel_session_max_hours: int = Field(default=24, ge=1, le=90 * 24)
    panel_login_rate_limits: str = "5/minute,20/hour"
    panel_user_rate_limits: str = "60/minute,600/hour"

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        async_database_url(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme, sep, rest = value.partition("://")
        if scheme not in ("http", "https") or not sep or not rest.strip("/"):
            raise ValueError("must be an http:// or https:// URL such as https://api.example.com")
        return value.rstrip("/")

    @field_validator(
        "rate_limits", "address_rate_limits", "panel_login_rate_limits", "panel_user_rate_limits"
    )
    @classmethod
    def _check_rate_limits(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate_limits(value)
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_trusted_proxies(cls, value: object) -> object:
        return parse_networks(value) if isinstance(value, str) else value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value.partition("://")[0] not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @property
    def token_rate_limits(self) -> list[RateLimitItem]:
        return parse_rate_limits(self.rate_limits)

    @property
    def client_rate_limits(self) -> list[RateLimitItem]:
        """The per-address limits: ``address_rate_limits``, or the per-token ones."""
        chosen = self.rate_limits if self.address_rate_limits is None else self.address_rate_limits
        return parse_rate_limits(chosen)

    @property
    def async_database_url(self) -> str:
        return async_database_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def parse_rate_limits(value: str) -> list[RateLimitItem]:
    """``"250/minute,5000/hour"`` as `limits` items, shortest window first; ``""`` is none."""
    items = parse_many(value) if value.strip() else []
    return sorted(items, key=lambda item: item.get_expiry())


@lru_cache
def get_settings() -> Settings:
    return Settings()
