"""Signed-out dashboard sessions: a revocation list shared by every web process (security review, #33).

A session cookie is signed and expiring; without a list a copied cookie kept working after
logout until it expired (8 h). Logout records the session's id in Redis until its expiry; each
request on a session asks Redis (bounded by its timeout) and this process's own list, which also
covers the time Redis is unreachable for sign-outs made here.
"""

from __future__ import annotations

import contextlib
import time

from redis.exceptions import RedisError

from router.store import CallStore


class SessionRevocations:
    """Which dashboard sessions were signed out before they expired."""

    def __init__(self, store: CallStore) -> None:
        """Keep the list in ``store``'s Redis (and this process's own copy)."""
        self.store = store
        self._local: dict[str, float] = {}

    async def revoke(self, session: str, *, until: float) -> None:
        """Sign ``session`` out everywhere until ``until`` (its expiry)."""
        now = time.time()
        self._local = {s: t for s, t in self._local.items() if t > now}
        self._local[session] = until
        # if Redis is unreachable, this process still refuses the session; the others do not
        with contextlib.suppress(RedisError, OSError):
            await self.store.logins.revoke_session(session, ttl_s=max(1, int(until - now) + 1))

    async def revoked(self, session: str) -> bool:
        """Return whether ``session`` was signed out."""
        if self._local.get(session, 0.0) > time.time():
            return True
        try:
            return await self.store.logins.session_revoked(session)
        except (RedisError, OSError):
            return False
