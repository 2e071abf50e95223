"""deploy/: the systemd units pass ``systemd-analyze verify``, the Caddyfile ``caddy validate``.

The shipped units start ``/opt/vpsorg/venv/bin/vpsorg``, where the README installs vpsorg. That
path does not exist here, and ``systemd-analyze verify`` rightly refuses a unit whose command is
not executable, so each unit is verified from a copy whose ``ExecStart=`` names this checkout's
``vpsorg`` instead; nothing else is changed, and a separate test pins the shipped path.
``verify`` exits 0 on unknown keys and bad values (it logs them and ignores the line), so the
tests want its output empty, not just its exit status. It does not look users up, so
``User=vpsorg`` needs no such user here (and the tests need no filter for it).

Without ``systemd-analyze`` or ``caddy`` the tests skip, saying why; with
``VPSORG_REQUIRE_DEPLOY_TOOLS`` set (CI) they fail. ``scripts/ensure-caddy`` installs
Debian's caddy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vpsorg.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
INSTALLED = "/opt/vpsorg/venv/bin/vpsorg"
HERE = Path(sys.executable).parent / "vpsorg"  # this checkout's console script

# Each file, and one instance of each template (verify loads the template for it).
UNIT_NAMES = [
    "vpsorg-migrate.service",
    "vpsorg-api@8001.service",
    "vpsorg-worker@1.service",
    "vpsorg.target",
]
API_PORTS = {"8001", "8002"}  # the instances the README, the target and the Caddyfile name


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        reason = f"{tool} is not installed"
        if os.environ.get("VPSORG_REQUIRE_DEPLOY_TOOLS"):
            pytest.fail(f"VPSORG_REQUIRE_DEPLOY_TOOLS is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


def unit_text(name: str) -> str:
    return (UNITS / name).read_text()


def directives(text: str, key: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{key}=(.*)$", text, re.MULTILINE)]


@pytest.fixture
def units_here(tmp_path: Path) -> Path:
    """The units, with ExecStart= pointing at this checkout's vpsorg."""
    assert HERE.is_file() and os.access(HERE, os.X_OK), HERE
    for unit in UNITS.iterdir():
        text = unit.read_text()
        (tmp_path / unit.name).write_text(text.replace(INSTALLED, str(HERE)))
    return tmp_path


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_systemd_analyze_verify_is_clean(units_here: Path, name: str) -> None:
    analyze = need("systemd-analyze")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(units_here / name)],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "info", "SYSTEMD_LOG_COLOR": "0"},
        timeout=60,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert output == "", output


def test_verify_catches_mistakes(units_here: Path) -> None:
    """The check above would see a typo: verify logs it (and exits 0, hence the empty-output test)."""
    analyze = need("systemd-analyze")
    template = units_here / "vpsorg-api@.service"
    text = template.read_text().replace("Restart=on-failure", "Restart=on-failur\nRestrat=no")
    template.write_text(text)
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(units_here / "vpsorg-api@8001.service")],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert "on-failur" in output and "Restrat" in output, output


def test_verify_refuses_the_installed_path_where_it_is_missing(tmp_path: Path) -> None:
    """Why the copies: the shipped path is checked for real, and is not installed here."""
    analyze = need("systemd-analyze")
    if Path(INSTALLED).exists():
        pytest.skip(f"{INSTALLED} exists on this machine")
    shutil.copy(UNITS / "vpsorg-migrate.service", tmp_path)
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / "vpsorg-migrate.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"Command {INSTALLED} is not executable" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("vpsorg-migrate.service", f"{INSTALLED} db upgrade"),
        ("vpsorg-api@.service", f"{INSTALLED} serve --no-worker --host 127.0.0.1 --port %i"),
        ("vpsorg-worker@.service", f"{INSTALLED} worker"),
    ],
)
def test_shipped_units_run_the_installed_vpsorg_unprivileged(name: str, command: str) -> None:
    text = unit_text(name)
    assert directives(text, "ExecStart") == [command]
    assert directives(text, "User") == ["vpsorg"]
    assert directives(text, "EnvironmentFile") == ["/etc/vpsorg/vpsorg.env"]
    assert directives(text, "NoNewPrivileges") == ["yes"]
    assert directives(text, "ProtectSystem") == ["strict"]
    assert directives(text, "CapabilityBoundingSet") == [""]
    assert directives(text, "PartOf") == ["vpsorg.target"]


@pytest.mark.parametrize("name", ["vpsorg-api@.service", "vpsorg-worker@.service"])
def test_processes_restart_after_migrating_and_share_the_metrics_dir(name: str) -> None:
    text = unit_text(name)
    assert directives(text, "Restart") == ["on-failure"]
    assert directives(text, "Requires") == ["vpsorg-migrate.service"]
    assert "vpsorg-migrate.service" in directives(text, "After")[0].split()
    assert directives(text, "Environment") == ["PROMETHEUS_MULTIPROC_DIR=/run/vpsorg/prometheus"]
    assert directives(text, "ReadWritePaths") == ["/run/vpsorg"]
    # Only the migrate unit owns /run/vpsorg: a RuntimeDirectory= here would be removed
    # under the other processes whenever this one stopped.
    assert directives(text, "RuntimeDirectory") == []


def test_the_migrate_unit_owns_an_emptied_metrics_dir() -> None:
    text = unit_text("vpsorg-migrate.service")
    assert directives(text, "Type") == ["oneshot"]
    assert directives(text, "RemainAfterExit") == ["yes"]
    assert directives(text, "RuntimeDirectory") == ["vpsorg vpsorg/prometheus"]
    assert directives(text, "RuntimeDirectoryPreserve") == []  # removed on stop: emptied


def test_caddyfile_validates() -> None:
    caddy = need("caddy")
    home = DEPLOY / "Caddyfile"
    result = subprocess.run(
        [caddy, "validate", "--adapter", "caddyfile", "--config", str(home)],
        capture_output=True,
        text=True,
        timeout=60,
        # caddy keeps state under $HOME / XDG dirs: not the caller's.
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(ROOT / ".pytest_cache")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_caddy_balances_over_the_api_instances_and_hides_metrics() -> None:
    text = (DEPLOY / "Caddyfile").read_text()
    upstreams = re.search(r"^\s*reverse_proxy (.+) \{$", text, re.MULTILINE)
    assert upstreams is not None
    ports = {hostport.rpartition(":")[2] for hostport in upstreams.group(1).split()}
    assert ports == API_PORTS
    assert all(h.startswith("127.0.0.1:") for h in upstreams.group(1).split())
    assert re.search(r"^\s*health_uri /readyz$", text, re.MULTILINE)
    assert re.search(r"^\s*handle /metrics\* \{\n\s*respond \"Not Found\" 404$", text, re.MULTILINE)


def test_readme_and_target_name_the_same_api_instances() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running in production", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"vpsorg-api@(\d+)", section)) == API_PORTS
    assert set(re.findall(r"vpsorg-api@(\d+)", unit_text("vpsorg.target"))) == API_PORTS


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "vpsorg.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip() and not value.startswith(("'", '"')), line
            values[key] = value
    return values


def test_env_example_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    values = env_example()
    fields = {f"VPSORG_{name.upper()}" for name in Settings.model_fields}
    assert set(values) <= fields, set(values) - fields  # no misspelt setting
    for key in list(os.environ):
        if key.startswith("VPSORG_"):
            monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.database_url.startswith("postgresql://")
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.embedded_worker is False
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32"]
    assert settings.log_format == "json"
    assert settings.driver == "libvirt"
    assert settings.public_url == "https://api.example.com"
