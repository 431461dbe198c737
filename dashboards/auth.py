"""Failed dashboard logins, counted per client address so that guessing tokens is slow.

Counted in Redis (every process sees the same count); while Redis is unreachable each
process counts on its own, so the limit still holds per process.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from router.store import CallStore

log = logging.getLogger(__name__)
WINDOW_S = 60


class LoginGuard:
    """Allows at most ``per_minute`` failed logins per client address per minute."""

    def __init__(self, store: CallStore, *, per_minute: int) -> None:
        """Count failures in ``store``'s Redis (or locally while it is down)."""
        self.store = store
        self.per_minute = per_minute
        self._local: dict[str, tuple[float, int]] = {}

    def _local_count(self, client: str) -> int:
        started, count = self._local.get(client, (0.0, 0))
        return count if time.monotonic() - started < WINDOW_S else 0

    async def allowed(self, client: str) -> bool:
        """Return whether ``client`` may try another login now."""
        try:
            count = await self.store.login_failures(client=client)
        except (RedisError, OSError):
            count = 0
        return max(count, self._local_count(client)) < self.per_minute

    async def failed(self, client: str) -> None:
        """Count one failed login of ``client``."""
        log.warning("failed dashboard login from %s", client)
        try:
            await self.store.count_login_failure(client=client, window_s=WINDOW_S)
            return
        except (RedisError, OSError):
            pass
        now = time.monotonic()
        started, count = self._local.get(client, (now, 0))
        if now - started >= WINDOW_S:
            started, count = now, 0
        self._local[client] = (started, count + 1)
        if len(self._local) > 10_000:
            self._local.pop(next(iter(self._local)))
