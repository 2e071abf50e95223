"""All configuration, from ``VPSORG_*`` environment variables, validated at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def async_database_url(url: str) -> str:
    """Map the plain URLs people already have onto the async drivers vpsorg uses.

    ``sqlite:///x.db`` -> ``sqlite+aiosqlite:///x.db``;
    ``postgresql://u@h/db`` (or ``postgres://``) -> ``postgresql+psycopg://u@h/db``.
    URLs that already name a driver are kept.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    if scheme == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
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
    libvirt_network: str = "default"  # a libvirt network name; "" for no network interface
    libvirt_domain_type: Literal["auto", "kvm", "qemu"] = "auto"
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

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    cors_origins: list[str] = ["*"]
    demo_credits: float = Field(default=100.0, ge=0)
    log_level: str = "info"

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        async_database_url(value)
        return value

    @property
    def async_database_url(self) -> str:
        return async_database_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
