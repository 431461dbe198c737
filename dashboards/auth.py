"""Dashboard login attempts, counted per client address so that guessing tokens is slow.

Counted in Redis (every process sees the same count, by one script that works on Redis 6.2)
before the token is checked, a right token being forgiven afterwards; while Redis is
unreachable each process counts on its own, so the limit still holds per process.
"""

from __future__ import annotations

import contextlib
import time

from redis.exceptions import RedisError

from router.store import CallStore

WINDOW_S = 60


class LoginGuard:
    """Allows at most ``per_minute`` failed logins per client address per minute."""

    def __init__(self, store: CallStore, *, per_minute: int) -> None:
        """Count failures in ``store``'s Redis (or locally while it is down)."""
        self.store = store
        self.per_minute = per_minute
        self._local: dict[str, tuple[float, int]] = {}

    async def attempt(self, client: str) -> bool:
        """Count a login attempt of ``client``; return whether it may be checked (False: over the limit).

        Counted before the token is checked (a right token is forgiven afterwards), so guesses
        sent at once cannot all slip past the limit.
        """
        local = self._count_locally(client)
        try:
            count = await self._count(client)
        except (RedisError, OSError):
            count = local
        return count <= self.per_minute

    async def succeeded(self, client: str) -> None:
        """The attempt's token was right: it is not a failure."""
        started, count = self._local.get(client, (time.monotonic(), 1))
        self._local[client] = (started, max(0, count - 1))
        with contextlib.suppress(RedisError, OSError):
            await self.store.logins.forgive_attempt(client)

    async def blocked(self, client: str) -> bool:
        """Return whether ``client`` is past the limit (for bearer tokens: checked, then counted if wrong)."""
        try:
            count = await self.store.logins.attempts(client)
        except (RedisError, OSError):
            count = 0
        started, local = self._local.get(client, (0.0, 0))
        local = local if time.monotonic() - started < WINDOW_S else 0
        return max(count, local) >= self.per_minute

    async def failed(self, client: str) -> None:
        """Count a wrong bearer token of ``client``."""
        self._count_locally(client)
        with contextlib.suppress(RedisError, OSError):
            await self._count(client)

    async def _count(self, client: str) -> int:
        """Count an attempt of ``client`` in Redis's current window; return the count."""
        return await self.store.logins.count_attempt(client, window_s=WINDOW_S)

    def _count_locally(self, client: str) -> int:
        """Count locally too (the limit per process while Redis is unreachable)."""
        now = time.monotonic()
        started, count = self._local.get(client, (now, 0))
        if now - started >= WINDOW_S:
            started, count = now, 0
        self._local[client] = (started, count + 1)
        if len(self._local) > 10_000:
            self._local.pop(next(iter(self._local)))
        return count + 1
