"""Every failure is a ``VpsError`` carrying what the API said: ``status``, ``code``,
``detail``, field ``errors`` and the ``request_id`` to quote to support.

The API's error ``code`` picks the class (``not_found`` -> ``NotFound``); an unknown code
falls back on the HTTP status (``ServerError`` for 5xx, ``ApiError`` otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class VpsError(Exception):
    """The base of every error this package raises."""

    default_code = "error"

    def __init__(
        self,
        detail: str,
        *,
        status: int = 0,
        code: str | None = None,
        errors: Mapping[str, Sequence[str]] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.code = code or self.default_code
        self.errors = {field: list(messages) for field, messages in (errors or {}).items()}
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        return one_line(self)


def one_line(error: VpsError) -> str:
    """``Invalid parameters: 'name'. name: Use 1-63 letters. (code invalid_parameters, request ab12)``"""
    parts = [error.detail.rstrip()]
    parts += [f"{field}: {' '.join(messages)}" for field, messages in error.errors.items()]
    tags = [f"code {error.code}"]
    if error.status:
        tags.append(f"status {error.status}")
    if error.request_id:
        tags.append(f"request {error.request_id}")
    return " ".join(parts) + f" ({', '.join(tags)})"


class ConnectionFailed(VpsError):
    """No answer from the API (refused, reset, timed out), after the retries."""

    default_code = "connection_failed"


class ApiError(VpsError):
    """The API answered with an error status."""

    default_code = "bad_request"


class InvalidParameters(ApiError):
    default_code = "invalid_parameters"


class InvalidJson(ApiError):
    default_code = "invalid_json"


class InvalidState(ApiError):
    """The server is not in a state that allows this (start a running server)."""

    default_code = "invalid_state"


class NotAuthenticated(ApiError):
    default_code = "not_authenticated"


class PaymentRequired(ApiError):
    """402: the account cannot pay for this."""

    default_code = "payment_required"


class InsufficientCredits(PaymentRequired):
    default_code = "insufficient_credits"


class AccountSuspended(PaymentRequired):
    default_code = "account_suspended"


class Forbidden(ApiError):
    default_code = "forbidden"


class InsufficientScope(Forbidden):
    default_code = "insufficient_scope"


class LimitExceeded(Forbidden):
    default_code = "limit_exceeded"


class NotFound(ApiError):
    default_code = "not_found"


class Conflict(ApiError):
    default_code = "conflict"


class IdempotencyKeyReused(ApiError):
    default_code = "idempotency_key_reused"


class IdempotencyKeyInUse(Conflict):
    default_code = "idempotency_key_in_use"


class PayloadTooLarge(ApiError):
    default_code = "payload_too_large"


class RateLimited(ApiError):
    """429; ``retry_after`` is the API's Retry-After in seconds."""

    default_code = "rate_limited"


class ServerError(ApiError):
    """A 5xx the API did not describe further."""

    default_code = "server_error"


class CapacityUnavailable(ServerError):
    default_code = "capacity_unavailable"


class ActionFailed(VpsError):
    """An action ended in ``error``; ``action`` is its final state."""

    default_code = "action_failed"

    def __init__(self, detail: str, *, code: str | None, action: object) -> None:
        super().__init__(detail, code=code)
        self.action = action


class WaitTimeout(VpsError):
    """``wait``/``wait_until`` gave up before the action finished or the status was reached."""

    default_code = "wait_timeout"


BY_CODE: dict[str, type[ApiError]] = {
    cls.default_code: cls
    for cls in (
        InvalidParameters,
        InvalidJson,
        InvalidState,
        NotAuthenticated,
        InsufficientCredits,
        AccountSuspended,
        InsufficientScope,
        LimitExceeded,
        NotFound,
        Conflict,
        IdempotencyKeyReused,
        IdempotencyKeyInUse,
        PayloadTooLarge,
        RateLimited,
        CapacityUnavailable,
    )
}
BY_STATUS: dict[int, type[ApiError]] = {
    401: NotAuthenticated,
    402: PaymentRequired,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: RateLimited,
}


def error_class(status: int, code: str | None) -> type[ApiError]:
    if code in BY_CODE:
        return BY_CODE[code]
    if status >= 500:
        return ServerError
    return BY_STATUS.get(status, ApiError)
