"""The panel's rate limits: logins per client address and email, changes per user.

They count with the API's limiter (``vpsorg.ratelimit``), in memory or in the same Redis,
under keys of their own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from vpsorg.config import Settings
from vpsorg.ratelimit import Limiter


def _limiter(settings: Settings, limits: str) -> Limiter | None:
    # The limiter counts "address" limits for a key it is given; ours are those limits.
    return Limiter.from_settings(
        settings.model_copy(update={"rate_limits": limits, "address_rate_limits": None})
    )


@dataclass
class PanelLimits:
    login: Limiter | None
    changes: Limiter | None

    @classmethod
    def from_settings(cls, settings: Settings) -> PanelLimits:
        return cls(
            _limiter(settings, settings.panel_login_rate_limits),
            _limiter(settings, settings.panel_user_rate_limits),
        )

    async def login_wait(self, address: str, email: str) -> int | None:
        """Seconds to wait before another login attempt, or None: this one may go on."""
        return await _wait(self.login, f"panel-login {address} {email}")

    async def change_wait(self, user_id: int) -> int | None:
        """Seconds the user waits before another change, or None: this one may go on."""
        return await _wait(self.changes, f"panel-user {user_id}")

    async def close(self) -> None:
        for limiter in (self.login, self.changes):
            if limiter is not None:
                await limiter.close()


async def _wait(limiter: Limiter | None, key: str) -> int | None:
    if limiter is None:
        return None
    verdict = await limiter.check(key, None)
    if verdict is None or verdict.allowed:
        return None
    return max(1, verdict.quota.reset_after(time.time()))
