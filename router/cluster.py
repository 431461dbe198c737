"""Many web processes on one Redis: leases, cleanup after a dead process, requests to a call's holder.

A stream's socket belongs to the process that accepted it; everything else lives in Redis, so a
webhook, a status callback or an agent action may land on any process. Each process renews a
lease (``emoroute:proc:{id}``, a few seconds) and records the live calls it holds. When a lease
lapses, the first other process to notice takes a lock and marks that process's calls ended
(``owner_lost``); their callers still reach a queue through the TwiML ``<Redirect>`` to the
fallback. A request for a call held elsewhere (end it; an agent has it) is published on the
holder's control channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from router import keys
from router.store import CallStore
from router.tasks import stop_tasks

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[None]]


def new_process_id() -> str:
    """Return a process id unique across hosts and restarts (host, pid, random)."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ProcessRegistry:
    """This process's lease, the reaper of dead processes' calls, and the control channel."""

    def __init__(self, store: CallStore, *, process_id: str, lease_s: float = 5.0, every_s: float = 1.0,
                 on_control: Handler | None = None) -> None:
        """Renew a ``lease_s`` lease every ``every_s``; ``on_control`` handles requests for our calls."""
        self.store = store
        self.redis: Any = store.redis
        self.process_id = process_id
        self.lease_s = lease_s
        self.every_s = every_s
        self.on_control = on_control
        self.reaped_calls = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        # since when this process has renewed its lease without a failure (None: it just failed).
        # Leases lapse for every process while Redis is unreachable (or failing over); after it
        # returns, a process reaps others only once they have had a lease period to renew theirs.
        self._renewing_since: float | None = None

    async def start(self) -> None:
        """Take the lease and start renewing it, reaping and listening."""
        await self._renew()
        self._tasks = [asyncio.create_task(self._heartbeat(), name="lease"),
                       asyncio.create_task(self._listen(), name="control")]

    async def stop(self) -> None:
        """Stop, and give the lease back (our calls were ended by the coordinator before)."""
        await stop_tasks(self._tasks, stopping=self._stopping)
        with contextlib.suppress(RedisError, OSError):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.srem(keys.procs(), self.process_id)
                pipe.delete(keys.proc_lease(self.process_id))
                await pipe.execute()

    async def _renew(self) -> bool:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.sadd(keys.procs(), self.process_id)
                pipe.set(keys.proc_lease(self.process_id), str(time.time()), px=int(self.lease_s * 1000))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("process lease not renewed (%s)", exc)
            self._renewing_since = None
            return False
        if self._renewing_since is None:
            self._renewing_since = time.monotonic()
        return True

    def may_reap(self) -> bool:
        """Whether Redis has answered this process for long enough that a lapsed lease means a dead process."""
        return self._renewing_since is not None and \
            time.monotonic() - self._renewing_since >= self.lease_s + self.every_s

    async def _heartbeat(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every_s)
            if self._stopping.is_set():
                return
            if not await self._renew() or not self.may_reap():
                continue
            try:
                await self.reap()
            except (RedisError, OSError) as exc:
                log.warning("reaper skipped a round (%s)", exc)

    async def reap(self) -> int:
        """Mark the live calls of processes whose lease lapsed ended; return how many."""
        ended = 0
        for proc in await self.redis.smembers(keys.procs()):
            if proc == self.process_id or await self.redis.exists(keys.proc_lease(proc)):
                continue
            if not await self.redis.set(keys.proc_reaping(proc), self.process_id, nx=True, ex=30):
                continue  # another process is on it
            for call_sid in await self.redis.smembers(keys.proc_calls(proc)):
                await self.store.call_ended(call_sid=call_sid, t=0.0, reason=f"owner_lost:{proc}", owner=proc)
                ended += 1
            await self.redis.srem(keys.procs(), proc)
            await self.redis.delete(keys.proc_calls(proc))
            log.warning("process %s stopped renewing its lease: %d of its calls marked ended", proc, ended)
        self.reaped_calls += ended
        return ended

    async def _listen(self) -> None:
        while not self._stopping.is_set():
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(keys.proc_control(self.process_id))
                while not self._stopping.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.25)
                    if message is None or self.on_control is None:
                        continue
                    try:
                        request = json.loads(message["data"])
                    except (TypeError, json.JSONDecodeError):
                        log.warning("unreadable control message skipped: %.120s", message["data"])
                        continue
                    try:
                        await self.on_control(request)
                    except Exception:  # noqa: BLE001 - one bad request never stops the channel
                        log.exception("control request %s failed", request)
            except (RedisError, OSError) as exc:
                log.warning("control channel lost (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def forward(self, call_sid: str, request: dict[str, Any]) -> str:
        """Send a request for ``call_sid`` to the process holding it.

        Return "local" when that is this process (or nobody holds it), "sent" when it was
        published to the holder, "orphan" when the holder's lease had lapsed (the caller then
        acts on the stored call directly).
        """
        owner = await self.store.owner_of(call_sid)
        if not owner or owner == self.process_id:
            return "local"
        if not await self.redis.exists(keys.proc_lease(owner)) and self.may_reap():
            return "orphan"
        # a lapsed lease right after an outage may be a live process that has not renewed yet:
        # its control channel says (a dead process has no subscriber)
        receivers = await self.redis.publish(keys.proc_control(owner), json.dumps({**request, "call_sid": call_sid}))
        return "sent" if receivers else "orphan"
