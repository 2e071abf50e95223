"""Schemathesis against a live ``vpsorg serve``: zero failures (tests/e2e/schemathesis.toml).

Every check, the stateful phase on (links chain create_server to the operations on the
server it made), two accounts for object-level authorization. Minutes long, so it runs
once, on SQLite, when asked: ``pytest tests/e2e/test_schemathesis.py --schemathesis`` (.ci/run does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.processes import MakeInstallation

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
ST = Path(sys.executable).parent / "st"
TIME_LIMIT = 600.0


def test_schemathesis_finds_nothing(
    installations: MakeInstallation, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if not request.config.getoption("--schemathesis"):
        pytest.skip("minutes long: run with --schemathesis (.ci/run does)")
    installation = installations()
    # Credits for every server the fuzzer creates; delete_server refunds nothing it could use up.
    alice = installation.create_user("alice", credits=1_000_000)
    bob = installation.create_user("bob", credits=1_000_000)
    auth = tmp_path / "auth.json"
    auth.write_text(
        json.dumps(
            {
                "auth": [
                    {
                        "name": name,
                        "fixedHeaders": [
                            {"name": "Authorization", "value": f"Bearer {user.token}"}
                        ],
                    }
                    for name, user in (("alice", alice), ("bob", bob))
                ]
            }
        )
    )
    process = installation.serve()
    result = subprocess.run(
        [
            str(ST),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{process.base_url}/api/v1/openapi.json",
            "--checks",
            "all",
            "--workers",
            "2",
            "--seed",
            os.environ.get("VPSORG_SCHEMATHESIS_SEED", "1"),
            "--continue-on-failure",
            "--output-sanitize",
            "false",
        ],
        env={
            **os.environ,
            "VPSORG_SCHEMATHESIS_AUTH": str(auth),
            "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
    )
    report = result.stdout + result.stderr
    print(report)
    assert result.returncode == 0, f"schemathesis failed:\n{report}"
