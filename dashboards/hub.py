"""One Redis subscription per process, fanned out to every live-event (SSE) client.

Each client gets a bounded buffer: a client too slow to keep up loses its oldest events
(it re-reads state on the next one it gets), never the server's memory. A user may hold
at most ``per_user`` connections at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from typing import Any

from redis.exceptions import RedisError

from router.store import CallStore
from router.tasks import stop_tasks

log = logging.getLogger(__name__)


class TooManyConnections(RuntimeError):
    """The user already holds their share of live-event connections."""


class Subscription:
    """One client's place at the hub: its bounded queue of events; :meth:`close` (idempotent) frees it."""

    def __init__(self, hub: EventHub, user: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.hub, self.user, self.queue = hub, user, queue
        self.closed = False

    def close(self) -> None:
        """Leave the hub (safe to call more than once)."""
        if not self.closed:
            self.closed = True
            self.hub._leave(self)


class EventHub:
    """Reads the events channel once and hands every event to each connected client."""

    def __init__(self, store: CallStore, *, per_user: int = 8, buffer: int = 256) -> None:
        """Fan out ``store``'s events; at most ``per_user`` clients per user, ``buffer`` events each."""
        self.store = store
        self.per_user = per_user
        self.buffer = buffer
        self._clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self._users: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.subscribed = asyncio.Event()

    @property
    def clients(self) -> int:
        """Return how many clients are connected."""
        return len(self._clients)

    async def start(self) -> None:
        """Start the subscription task."""
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        """Stop the subscription task."""
        if self._task:
            await stop_tasks([self._task], stopping=self._stopping)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            pubsub = self.store.events_pubsub()
            try:
                await pubsub.subscribe(self.store.events_channel)
                self.subscribed.set()
                while not self._stopping.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.25)
                    if message is not None:
                        self._fan_out(message["data"])
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                log.warning("event hub: Redis subscription lost (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _fan_out(self, data: str) -> None:
        try:
            event = json.loads(data)
        except (TypeError, json.JSONDecodeError):
            log.warning("event hub: unreadable event skipped: %.120s", data)
            return
        for queue in self._clients:
            if queue.full():
                queue.get_nowait()  # the slow client loses its oldest event
            queue.put_nowait(event)

    def subscribe(self, user: str) -> Subscription:
        """Return a new client's subscription for ``user``.

        Raises:
            TooManyConnections: the user already holds ``per_user`` connections.
        """
        if self._users[user] >= self.per_user:
            raise TooManyConnections(f"{user} already holds {self.per_user} live-event connections")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.buffer)
        self._users[user] += 1
        self._clients.add(queue)
        return Subscription(self, user, queue)

    def _leave(self, subscription: Subscription) -> None:
        self._clients.discard(subscription.queue)
        self._users[subscription.user] -= 1
        if self._users[subscription.user] <= 0:
            del self._users[subscription.user]
