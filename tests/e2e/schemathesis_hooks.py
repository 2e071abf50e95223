"""Schemathesis hooks (SCHEMATHESIS_HOOKS, set by test_schemathesis.py): the two refusals of a
schema-valid request that no schema can foresee, each accepted only in its exact form.

- ``start_server``, ``stop_server``, ``reboot_server``: the reference's own ``400 invalid_state``
  (starting a running server). Whether it is accepted depends on the server's state.
- ``create_server``: ``400`` naming only ``ssh_key_id`` as an unknown key. Keys belong to an
  account; which ids the caller holds is not something one document for every account can say.

schemathesis.toml lets the built-in ``positive_data_acceptance`` accept a 400 for these four
operations only; this check fails every 400 there that is not one of those two.
"""

from __future__ import annotations

from typing import Any

import schemathesis

POWER_ACTIONS = {
    "POST /api/v1/servers/{server_id}/start/",
    "POST /api/v1/servers/{server_id}/stop/",
    "POST /api/v1/servers/{server_id}/reboot/",
}
CREATE = "POST /api/v1/servers/"


@schemathesis.check
def state_dependent_refusals(ctx: Any, response: Any, case: Any) -> bool | None:
    label = case.operation.label
    if label not in POWER_ACTIONS and label != CREATE:
        return None
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code != 400 or _expected_refusal(label, response.json()):
        return None
    raise AssertionError(
        f"Valid data should have been accepted; {label} answered 400: {response.text}"
    )


def _expected_refusal(label: str, body: dict[str, Any]) -> bool:
    if label in POWER_ACTIONS:
        return body.get("code") == "invalid_state"
    errors = body.get("errors") or {}
    return set(errors) == {"ssh_key_id"} and all(
        message.startswith("Unknown SSH key") for message in errors["ssh_key_id"]
    )
