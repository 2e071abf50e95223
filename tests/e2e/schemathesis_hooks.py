"""Schemathesis hooks (SCHEMATHESIS_HOOKS, set by test_schemathesis.py): the refusals of a
schema-valid request that no schema can foresee, each accepted only in its exact form.

- ``400 invalid_state`` where the answer depends on the server's state: the reference's own on
  the power actions (starting a running server), a snapshot of a server with no disk yet, a
  restore while an action runs or from a copy still being made.
- ``400`` naming only a reference to something the caller may or may not hold: ``ssh_key_id`` on
  a create (keys belong to an account), ``backup_id`` on a restore (copies belong to a server).
  Which ids exist is not something one document for every account can say. Likewise the
  list's ``cursor``: an opaque token the server issues in ``next`` links, which a string the
  fuzzer makes up is not.

schemathesis.toml lets the built-in ``positive_data_acceptance`` accept a 400 for these
operations only; this check fails every 400 there that is not one of those.
"""

from __future__ import annotations

from typing import Any

import schemathesis

SERVER = "/api/v1/servers/{server_id}"
STATE_DEPENDENT = {
    f"POST {SERVER}/start/",
    f"POST {SERVER}/stop/",
    f"POST {SERVER}/reboot/",
    f"POST {SERVER}/snapshots/",
    f"POST {SERVER}/restore/",
}
REFERENCES = {
    "GET /api/v1/servers/": ("cursor", "Not a cursor"),
    "POST /api/v1/servers/": ("ssh_key_id", "Unknown SSH key"),
    f"POST {SERVER}/restore/": ("backup_id", "Unknown backup"),
}


@schemathesis.check
def state_dependent_refusals(ctx: Any, response: Any, case: Any) -> bool | None:
    label = case.operation.label
    if label not in STATE_DEPENDENT and label not in REFERENCES:
        return None
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code != 400 or _expected_refusal(label, response.json()):
        return None
    raise AssertionError(
        f"Valid data should have been accepted; {label} answered 400: {response.text}"
    )


def _expected_refusal(label: str, body: dict[str, Any]) -> bool:
    if label in STATE_DEPENDENT and body.get("code") == "invalid_state":
        return True
    if label not in REFERENCES:
        return False
    field, message = REFERENCES[label]
    errors = body.get("errors") or {}
    return set(errors) == {field} and all(text.startswith(message) for text in errors[field])
