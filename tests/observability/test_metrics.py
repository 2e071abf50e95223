"""/metrics through HTTP: requests by route template, actions, the database's gauges, the token."""

from __future__ import annotations

import asyncio

import pytest

from tests.observability.conftest import scrape, value
from vpsorg.billing import metering
from vpsorg.observability import metrics

SERVER_ROUTE = "/api/v1/servers/{server_id}/"


async def test_requests_are_counted_by_route_template_never_by_raw_path(client, user, factory):
    server = await factory.server(user)
    before = await scrape(client)

    for _ in range(3):
        response = await client.get(f"/api/v1/servers/{server['id']}/", headers=user.headers)
        assert response.status_code == 200
    missing = await client.get("/api/v1/servers/99999/", headers=user.headers)
    assert missing.status_code == 404
    after = await scrape(client)

    labels = {"method": "GET", "route": SERVER_ROUTE}
    ok = value(after, "vpsorg_http_requests_total", status="200", **labels)
    assert ok - value(before, "vpsorg_http_requests_total", status="200", **labels) == 3
    not_found = value(after, "vpsorg_http_requests_total", status="404", **labels)
    assert not_found - value(before, "vpsorg_http_requests_total", status="404", **labels) == 1
    count = "vpsorg_http_request_duration_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == 4
    routes = {dict(labels).get("route") for _name, labels in after}
    assert f"/api/v1/servers/{server['id']}/" not in routes
    assert "/api/v1/servers/99999/" not in routes


async def test_an_unknown_path_is_one_label(client):
    for path in ("/nothing/here", "/wp-login.php", "/api/v1/nope/"):
        assert (await client.get(path)).status_code == 404

    samples = await scrape(client)

    unmatched = {"method": "GET", "route": "(unmatched)", "status": "404"}
    assert value(samples, "vpsorg_http_requests_total", **unmatched) >= 3
    assert not any(dict(labels).get("route") == "/wp-login.php" for _name, labels in samples)


async def test_an_action_is_counted_by_command_and_outcome_with_its_duration(
    client, app, user, factory
):
    before = await scrape(client)

    await factory.server(user)
    app.state.runtime.driver.inject_fault("stop", "guest agent timed out")
    server = await factory.server(user)
    await client.post(f"/api/v1/servers/{server['id']}/stop/", headers=user.headers)
    await factory.wait_for(user, server["id"], "error")
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("vpsorg_actions_total", command="create", outcome="success") == 2
    assert delta("vpsorg_actions_total", command="stop", outcome="error") == 1
    assert delta("vpsorg_action_duration_seconds_count", command="create", outcome="success") == 2
    assert delta("vpsorg_action_duration_seconds_count", command="stop", outcome="error") == 1
    driver_calls = "vpsorg_driver_call_duration_seconds_count"
    assert delta(driver_calls, operation="create", host="default", outcome="ok") == 2
    assert delta(driver_calls, operation="stop", host="default", outcome="error") == 1


async def test_database_gauges_are_read_at_scrape_time(client, app, user, factory):
    await factory.server(user)
    await app.state.runtime.worker.stop()  # nothing claims: queued actions stay runnable
    await factory.server(user, wait=None, name="queued", location="eu-central")
    await asyncio.sleep(0.05)

    samples = await scrape(client)

    assert value(samples, "vpsorg_database_up") == 1
    assert value(samples, "vpsorg_action_queue_depth") == 1
    assert value(samples, "vpsorg_action_queue_oldest_age_seconds") >= 0.05
    servers = {
        (labels["status"], labels["location"]): count
        for (name, label_set), count in samples.items()
        if name == "vpsorg_servers" and (labels := dict(label_set))
    }
    assert servers == {("active", "us-west"): 1, ("provisioning", "eu-central"): 1}


async def test_the_queue_is_empty_once_the_worker_is_done(client, user, factory):
    await factory.server(user)

    samples = await scrape(client)

    assert value(samples, "vpsorg_action_queue_depth") == 0
    assert value(samples, "vpsorg_action_queue_oldest_age_seconds") == 0


async def test_metering_runs_and_hours_charged_are_counted(client, app, user, factory):
    await factory.server(user)
    before = await scrape(client)

    charged = await metering.charge_due_hours(app.state.runtime.sessions)
    after = await scrape(client)

    assert (
        value(after, "vpsorg_metering_runs_total") - value(before, "vpsorg_metering_runs_total")
        == 1
    )
    hours = "vpsorg_metering_hours_charged_total"
    assert value(after, hours) - value(before, hours) == charged


async def test_reconciler_corrections_are_counted(client, app, user, factory):
    server = await factory.server(user)
    driver = app.state.runtime.driver
    await driver.stop(f"vps-{server['id']}", 1.0)  # the guest shut itself down
    before = await scrape(client)

    await app.state.runtime.worker.reconciler.run()
    after = await scrape(client)

    name = "vpsorg_reconciler_corrections_total"
    labels = {"from_status": "active", "to_status": "stopped"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_hosts_are_labelled_by_name_only():
    assert metrics.host_label(None) == "default"
    assert metrics.host_label("qemu+ssh://root@kvm1.example.net:2222/system?keyfile=/k") == (
        "kvm1.example.net"
    )
    assert metrics.host_label("qemu:///system") == "qemu:///system"


@pytest.mark.settings(metrics_token="scrape-secret")
async def test_the_metrics_token_guards_metrics_but_not_the_probes(client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-secret"}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["code"] == "not_authenticated"
    samples = await scrape(client, Authorization="Bearer scrape-secret")
    assert value(samples, "vpsorg_database_up") == 1
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
