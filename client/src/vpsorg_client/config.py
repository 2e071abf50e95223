"""Contexts for the ``vps`` command: a name, an API URL and a token each, one active.

Stored in ``~/.config/vps/config.toml`` (``$XDG_CONFIG_HOME/vps/config.toml``, or the file
``$VPS_CONFIG`` names), readable by its owner only (mode 0600) since it holds tokens::

    active = "prod"

    [contexts.prod]
    url = "https://api.example.com"
    token = "vps_..."

``VPS_URL`` and ``VPS_TOKEN`` override the active context's values (either alone, or both
without any context at all).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(Exception):
    """The configuration is missing something or cannot be read."""


@dataclass(frozen=True)
class Context:
    name: str
    url: str
    token: str


@dataclass
class Config:
    active: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)


def config_path() -> Path:
    explicit = os.environ.get("VPS_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vps" / "config.toml"


def load(path: Path | None = None) -> Config:
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return Config()
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from error
    contexts = {
        name: Context(name, str(values["url"]), str(values["token"]))
        for name, values in data.get("contexts", {}).items()
    }
    active = data.get("active")
    return Config(active if isinstance(active, str) else None, contexts)


def toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes (ASCII only) are all valid TOML."""
    return json.dumps(value, ensure_ascii=True)


def dumps(config: Config) -> str:
    lines = []
    if config.active is not None:
        lines.append(f"active = {toml_string(config.active)}")
    for name, context in sorted(config.contexts.items()):
        lines += [
            "",
            f"[contexts.{toml_string(name)}]",
            f"url = {toml_string(context.url)}",
            f"token = {toml_string(context.token)}",
        ]
    return "\n".join(lines) + "\n"


def save(config: Config, path: Path | None = None) -> Path:
    """Write the file atomically, created with mode 0600 (it is never world-readable)."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(dumps(config))
    os.chmod(temporary, 0o600)  # O_CREAT's mode does not apply to a file left over
    os.replace(temporary, path)
    return path


def resolve(config: Config, name: str | None = None) -> tuple[str, str]:
    """The (url, token) to use: the named or active context, with the environment on top."""
    context: Context | None = None
    chosen = name or config.active
    if chosen is not None:
        context = config.contexts.get(chosen)
        if context is None:
            raise ConfigError(f"no context named {chosen!r}: see `vps context list`")
    url = os.environ.get("VPS_URL") or (context.url if context else None)
    token = os.environ.get("VPS_TOKEN") or (context.token if context else None)
    if not url or not token:
        raise ConfigError(
            "no API to talk to: run `vps context create NAME --url URL`, "
            "or set VPS_URL and VPS_TOKEN"
        )
    return url, token
