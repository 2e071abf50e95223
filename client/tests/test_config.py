"""The contexts file: what is written is read back, whatever the names hold."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from vpsorg_client import config


def test_contexts_round_trip_through_toml(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "config.toml"
    odd = 'a "quoted" name \\ with ünïcode'
    saved = config.Config(
        active=odd,
        contexts={
            odd: config.Context(odd, "https://a.example.com", "vps_a"),
            "b": config.Context("b", "http://127.0.0.1:8000", 'vps_"b"'),
        },
    )
    config.save(saved, path)
    assert config.load(path) == saved
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_resolve_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = config.Config("a", {"a": config.Context("a", "https://a", "tok-a")})
    monkeypatch.delenv("VPS_URL", raising=False)
    monkeypatch.delenv("VPS_TOKEN", raising=False)
    assert config.resolve(settings) == ("https://a", "tok-a")
    monkeypatch.setenv("VPS_TOKEN", "tok-env")
    assert config.resolve(settings) == ("https://a", "tok-env")
    monkeypatch.setenv("VPS_URL", "https://env")
    assert config.resolve(config.Config()) == ("https://env", "tok-env")
    with pytest.raises(config.ConfigError, match="no context named"):
        config.resolve(settings, "missing")


def test_a_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    assert config.load(tmp_path / "none.toml") == config.Config()
