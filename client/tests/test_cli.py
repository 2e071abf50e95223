"""The ``vps`` command against a real ``vpsorg serve``, through typer's CliRunner."""

from __future__ import annotations

import json
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support import Installation
from test_sdk import public_key
from typer.testing import CliRunner, Result

from vpsorg_client.cli import app

Vps = Callable[..., Result]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "vps" / "config.toml"


@pytest.fixture
def vps(config_file: Path) -> Vps:
    """Run ``vps ARGS`` with its own config file and no VPS_URL/VPS_TOKEN from outside."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None, **env: str) -> Result:
        environment: dict[str, str | None] = {
            "VPS_CONFIG": str(config_file),
            "VPS_URL": None,
            "VPS_TOKEN": None,
            "VPS_CONTEXT": None,
            **env,
        }
        return runner.invoke(app, list(args), input=input, env=environment)

    return run


@pytest.fixture
def logged_in(vps: Vps, api_url: str, token: str) -> Vps:
    result = vps("context", "create", "test", "--url", api_url, input=token + "\n")
    assert result.exit_code == 0, result.stderr
    return vps


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}{result.exception!r}"
    return result


def as_json(result: Result) -> object:
    return json.loads(ok(result).stdout)


def test_context_create_reads_the_token_from_stdin(
    vps: Vps, config_file: Path, api_url: str, token: str
) -> None:
    ok(vps("context", "create", "prod", "--url", api_url, input=token + "\n"))
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    saved = tomllib.loads(config_file.read_text())
    assert saved == {"active": "prod", "contexts": {"prod": {"url": api_url, "token": token}}}

    ok(vps("context", "create", "other", "--url", "http://x.invalid", "--no-verify", input="t\n"))
    assert [c["name"] for c in as_json(vps("context", "list", "-o", "json")) if c["active"]] == [  # type: ignore[union-attr, index]
        "other"
    ]
    ok(vps("context", "use", "prod"))
    assert tomllib.loads(config_file.read_text())["active"] == "prod"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert "vps_" not in vps("context", "list", "-o", "table").stdout  # tokens are not shown
    ok(vps("context", "delete", "other"))


def test_context_create_refuses_a_bad_token(vps: Vps, api_url: str, config_file: Path) -> None:
    result = vps("context", "create", "bad", "--url", api_url, input="vps_wrong\n")
    assert result.exit_code == 1
    assert "not_authenticated" in result.stderr and not config_file.exists()


def test_environment_overrides_the_context(vps: Vps, api_url: str, token: str) -> None:
    assert as_json(vps("account", "-o", "json", VPS_URL=api_url, VPS_TOKEN=token))["id"]  # type: ignore[index]
    missing = vps("account")
    assert missing.exit_code == 1 and "config_error" in missing.stderr


def test_server_commands(logged_in: Vps) -> None:
    vps = logged_in
    created = as_json(
        vps("server", "create", "--name", "cli-1", "--plan", "3", "--os", "1",
            "--location", "us-east", "--hostname", "cli.example.com", "--wait", "-o", "json")
    )  # fmt: skip
    assert isinstance(created, dict)
    assert created["status"] == "active" and created["ip_address"] and created["name"] == "cli-1"
    server_id = str(created["id"])

    listed = as_json(vps("server", "list", "-o", "json"))
    assert isinstance(listed, list) and server_id in {str(s["id"]) for s in listed}
    as_yaml = yaml.safe_load(ok(vps("server", "list", "-o", "yaml", "--status", "active")).stdout)
    assert isinstance(as_yaml, list) and {s["name"] for s in as_yaml} >= {"cli-1"}
    assert "cli-1" in ok(vps("server", "list", "-o", "table")).stdout

    assert as_json(vps("server", "describe", "cli-1", "-o", "json"))["id"] == created["id"]  # type: ignore[index]
    updated = as_json(
        vps("server", "update", server_id, "--name", "cli-2", "--backups", "-o", "json")
    )
    assert updated["name"] == "cli-2" and updated["backups_enabled"] is True  # type: ignore[index]

    stopped = as_json(vps("server", "stop", "cli-2", "--wait", "-o", "json"))
    assert stopped["status"] == "stopped"  # type: ignore[index]
    assert as_json(vps("server", "start", server_id, "--wait", "-o", "json"))["status"] == "active"  # type: ignore[index]
    reboot = as_json(vps("server", "reboot", server_id, "-o", "json"))
    assert reboot["command"] == "reboot"  # type: ignore[index]
    waited = as_json(vps("action", "wait", str(reboot["id"]), "-o", "json"))  # type: ignore[index]
    assert waited["status"] == "success"  # type: ignore[index]
    assert as_json(vps("action", "describe", str(reboot["id"]), "-o", "json"))["progress"] == 100  # type: ignore[index]
    history = as_json(vps("action", "list", "--server", server_id, "-o", "json"))
    assert [a["command"] for a in history] == ["reboot", "start", "stop", "create"]  # type: ignore[index, union-attr]
    assert as_json(vps("action", "list", "-o", "json"))

    ok(vps("server", "delete", server_id, "--yes"))
    gone = vps("server", "describe", server_id)
    assert gone.exit_code == 1


def test_a_failed_action_exits_non_zero(logged_in: Vps, installation: Installation) -> None:
    vps = logged_in
    created = as_json(
        vps("server", "create", "--name", "cli-fail", "--plan", "3", "--os", "1",
            "--location", "us-east", "--wait", "-o", "json")
    )  # fmt: skip
    server_id = created["id"]  # type: ignore[index]
    installation.fail_next("stop", server_id)
    result = vps("server", "stop", str(server_id), "--wait")
    assert result.exit_code == 1
    assert "failed" in result.stderr and "simulated failure" in result.stderr
    ok(vps("server", "delete", str(server_id), "-y"))


def test_backup_commands_and_server_delete_warns(logged_in: Vps) -> None:
    vps = logged_in
    created = as_json(
        vps("server", "create", "--name", "cli-bk", "--plan", "3", "--os", "1",
            "--location", "us-east", "--wait", "-o", "json")
    )  # fmt: skip
    server_id = str(created["id"])  # type: ignore[index]
    assert as_json(vps("backup", "list", server_id, "-o", "json")) == []

    snap = as_json(vps("backup", "create", "cli-bk", "--name", "snap-1", "--wait", "-o", "json"))
    assert (snap["kind"], snap["name"], snap["status"]) == ("snapshot", "snap-1", "available")  # type: ignore[index]
    listed = as_json(vps("backup", "list", server_id, "-o", "json"))
    assert [(b["id"], b["kind"], b["status"]) for b in listed] == [  # type: ignore[index, union-attr]
        (snap["id"], "snapshot", "available")  # type: ignore[index]
    ]
    assert "snap-1" in ok(vps("backup", "list", server_id, "-o", "table")).stdout
    assert yaml.safe_load(ok(vps("backup", "list", server_id, "-o", "yaml")).stdout)[0]["name"]

    second = as_json(vps("backup", "create", server_id, "--name", "snap-2", "-o", "json"))
    assert second["backup"]["status"] == "creating"  # type: ignore[index]
    assert second["action"]["command"] == "snapshot"  # type: ignore[index]
    ok(vps("action", "wait", str(second["action"]["id"])))  # type: ignore[index]

    restored = as_json(
        vps("backup", "restore", server_id, str(snap["id"]), "--wait", "-o", "json")  # type: ignore[index]
    )
    assert restored["status"] == "active"  # type: ignore[index]
    restore = as_json(vps("backup", "restore", server_id, str(snap["id"]), "-o", "json"))  # type: ignore[index]
    assert restore["command"] == "restore"  # type: ignore[index]
    ok(vps("action", "wait", str(restore["id"])))  # type: ignore[index]

    ok(vps("backup", "delete", server_id, str(second["backup"]["id"])))  # type: ignore[index]
    assert len(as_json(vps("backup", "list", server_id, "-o", "json"))) == 1  # type: ignore[arg-type]

    refused = vps("server", "delete", server_id)  # stdin is not a terminal, no --yes
    assert refused.exit_code == 1 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "0 backups and 1 snapshot" in refused.stderr and "--yes" in refused.stderr
    assert as_json(vps("server", "describe", server_id, "-o", "json"))["id"] == created["id"]  # type: ignore[index]

    deleted = ok(vps("server", "delete", "cli-bk", "--yes"))
    assert "also deletes its 0 backups and 1 snapshot" in deleted.stderr
    assert f"Server {server_id} deleted." in deleted.stderr
    assert vps("server", "describe", server_id).exit_code == 1


def test_an_error_is_one_line_with_code_and_request_id(logged_in: Vps) -> None:
    result = logged_in("server", "describe", "999999")
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "code not_found" in lines[0] and "request " in lines[0]

    invalid = logged_in(
        "server",
        "create",
        "--name",
        "bad name",
        "--plan",
        "99",
        "--os",
        "1",
        "--location",
        "us-east",
    )
    assert invalid.exit_code == 1 and len(invalid.stderr.strip().splitlines()) == 1
    assert "invalid_parameters" in invalid.stderr and "plan_id:" in invalid.stderr


def test_catalog_account_keys_and_tokens(logged_in: Vps, tmp_path: Path) -> None:
    vps = logged_in
    assert {p["id"] for p in as_json(vps("plan", "list", "-o", "json"))} >= {1, 3}  # type: ignore[union-attr, index]
    assert yaml.safe_load(ok(vps("os", "list", "-o", "yaml")).stdout)[0]["slug"]
    assert "us-east" in ok(vps("location", "list", "-o", "table")).stdout
    assert as_json(vps("account", "-o", "json"))["balance"] > 0  # type: ignore[index, operator]
    assert as_json(vps("account", "ledger", "-o", "json"))
    assert as_json(vps("account", "events", "-o", "json"))

    key_file = tmp_path / "id_ed25519.pub"
    key_file.write_text(public_key() + "\n")
    key = as_json(vps("ssh-key", "create", "--name", "cli-key", "-f", str(key_file), "-o", "json"))
    assert key["fingerprint"]  # type: ignore[index]
    assert key["id"] in {k["id"] for k in as_json(vps("ssh-key", "list", "-o", "json"))}  # type: ignore[index, union-attr]
    ok(vps("ssh-key", "delete", str(key["id"])))  # type: ignore[index]

    made = as_json(vps("token", "create", "--name", "cli-token", "--scope", "read", "-o", "json"))
    assert made["token"].startswith("vps_") and made["scope"] == "read"  # type: ignore[index]
    assert made["id"] in {t["id"] for t in as_json(vps("token", "list", "-o", "json"))}  # type: ignore[index, union-attr]
    ok(vps("token", "revoke", str(made["id"])))  # type: ignore[index]


def test_help_and_completion(vps: Vps) -> None:
    assert "server" in ok(vps("--help")).stdout
    assert ok(vps("--version")).stdout.startswith("vps ")
    assert "complete" in ok(vps("--show-completion", "bash", SHELL="/bin/bash")).stdout.lower()
