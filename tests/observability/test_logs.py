"""Log lines: one JSON object each, with the request's or the action's context; no tokens."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import make_settings
from vpsorg.logs import configure_logging


async def test_a_request_line_names_request_account_route_status_and_duration(
    client, user, json_log
):
    response = await client.get("/api/v1/servers/", headers=user.headers)
    assert response.status_code == 200

    [line] = json_log.by("vpsorg.access")
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["account_id"] == user.account_id
    assert (line["method"], line["route"], line["status"]) == ("GET", "/api/v1/servers/", 200)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["level"] == "info"
    assert line["time"].endswith("+00:00")


async def test_every_line_of_a_request_carries_its_id_and_route(client, app, user, json_log):
    def note_token_use(token: object) -> None:
        logging.getLogger("vpsorg.tests").warning("inside the request")

    app.state.runtime.note_token_use = note_token_use
    response = await client.get(
        "/api/v1/servers/", headers={**user.headers, "X-Request-ID": "req-42"}
    )

    [inside] = json_log.by("vpsorg.tests")
    assert inside["request_id"] == "req-42" == response.headers["x-request-id"]
    assert inside["route"] == "/api/v1/servers/"
    assert "status" not in inside, "not answered yet"


async def test_an_unauthenticated_request_has_no_account(client, json_log):
    response = await client.get("/api/v1/servers/42/")
    assert response.status_code == 401

    [line] = json_log.by("vpsorg.access")
    assert "account_id" not in line
    assert (line["route"], line["status"]) == ("/api/v1/servers/{server_id}/", 401)


async def test_action_lines_name_the_action_server_command_attempt_and_host(
    client, user, factory, json_log
):
    server = await factory.server(user)

    lines = [line for line in json_log.by("vpsorg.actions.worker") if "action_id" in line]
    assert lines, json_log.lines()
    for line in lines:
        assert line["action_id"] == server["action"]["id"]
        assert line["server_id"] == server["id"]
        assert (line["command"], line["attempt"], line["host"]) == ("create", 1, "default")
        assert "request_id" not in line, "the worker runs outside any request"


async def test_tokens_never_reach_a_line(client, json_log):
    logging.getLogger("vpsorg.tests").warning("got %s", "vps_s3cretTokenValue1234")
    await client.get("/vps_s3cretTokenValue1234/?token=vps_s3cretTokenValue1234")

    text = json_log.stream.getvalue()
    assert "s3cret" not in text
    assert "vps_[redacted]" in text


async def test_probes_are_logged_at_debug_only(client, json_log):
    await client.get("/healthz")

    [line] = json_log.by("vpsorg.access")
    assert line["level"] == "debug"


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize(
    ("log_format", "json_expected"), [("json", True), ("text", False), ("auto", True)]
)
def test_configure_logging_picks_the_format(
    tmp_path, restore_root_logger, log_format, json_expected
):
    stream = io.StringIO()  # not a terminal: "auto" is JSON
    settings = make_settings("sqlite:///x.db", tmp_path, log_format=log_format, log_level="info")
    configure_logging(settings, stream)

    logging.getLogger("vpsorg.tests").info("hello %s", "world")

    [line] = stream.getvalue().splitlines()
    if json_expected:
        assert json.loads(line)["message"] == "hello world"
    else:
        assert line.endswith("INFO vpsorg.tests: hello world")
        assert line[:4].isdigit(), "text lines start with a timestamp"


def test_uvicorn_access_lines_go_through_the_same_formatter(tmp_path):
    """uvicorn's access log had no timestamps; through vpsorg's formatter it has them."""
    script = textwrap.dedent(
        """
        import logging, logging.config
        from vpsorg.config import Settings
        from vpsorg.logs import uvicorn_log_config
        settings = Settings(log_format="json", log_level="info")
        logging.config.dictConfig(uvicorn_log_config(settings))
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/?t=vps_abcdefghijklmnop", "1.1", 200
        )
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    [line] = [json.loads(text) for text in result.stderr.splitlines()]
    assert line["logger"] == "uvicorn.access"
    assert line["time"] and line["level"] == "info"
    assert '"GET /?t=vps_[redacted] HTTP/1.1" 200' in line["message"]
