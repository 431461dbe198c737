"""Dashboard sign-in state in Redis: failed-login counters per client address and signed-out sessions.

Beside the live store (router.store.CallStore holds one as ``logins``, sharing its client), for
dashboards.auth and dashboards.sessions, which keep their own per-process copies for the time Redis
is unreachable.
"""

from __future__ import annotations

from typing import Any

from router import keys

# INCR with the window's expiry set by the first attempt (and repaired if a key lost it): one script,
# since Redis 6.2 has no EXPIRE NX
COUNT_IN_WINDOW_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
FORGIVE_LUA = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 1
"""


class Logins:
    """Failed dashboard logins per client in a window, and sessions signed out before they expired."""

    def __init__(self, client: Any) -> None:
        """Use ``client`` (decode_responses=True)."""
        self.redis: Any = client

    async def count_attempt(self, client: str, *, window_s: int) -> int:
        """Count a login attempt from ``client`` in the current window (its first attempt starts it); return the count.

        Counted before the token is checked, so concurrent guesses cannot all pass the limit.
        """
        return int(await self.redis.eval(COUNT_IN_WINDOW_LUA, 1, keys.login_failures(client), window_s))

    async def attempts(self, client: str) -> int:
        """Return the attempts counted for ``client`` in the current window."""
        return int(await self.redis.get(keys.login_failures(client)) or 0)

    async def forgive_attempt(self, client: str) -> None:
        """Take back a counted attempt that turned out to be a right token."""
        await self.redis.eval(FORGIVE_LUA, 1, keys.login_failures(client))

    async def revoke_session(self, session: str, *, ttl_s: int) -> None:
        """Put a signed-out dashboard session on the revocation list for ``ttl_s`` seconds."""
        await self.redis.set(keys.revoked_session(session), "1", ex=ttl_s)

    async def session_revoked(self, session: str) -> bool:
        """Return whether a dashboard session was signed out."""
        return bool(await self.redis.exists(keys.revoked_session(session)))
