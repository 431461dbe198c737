"""A caller's erasure: their calls' keys, this process's spooled writes, queued jobs and Redis's files.

:class:`CallEraser` (``CallStore.erasure``) finds a caller's stored calls and deletes every key
they left, with the analytics roll-ups of their hours and what this process's outbox spooled for
them. What lies beyond the live keys is :class:`DiskScrubber`'s:

Deleting keys does not delete what Redis already wrote to disk: the append-only file keeps every
command (a caller's number, call SID, transcripts) until it is rewritten, and an RDB snapshot
keeps the keys until the next save. :class:`DiskScrubber` has Redis rewrite its append-only file
(``BGREWRITEAOF``) and, where snapshots are configured, save a new one (``BGSAVE SCHEDULE``)
within ``delay_s`` of an erasure or opt-out; requests arriving together share one rewrite. A
rewrite that was already running when the keys were deleted forked before the deletion, so it is
asked for again once it has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

from redis.exceptions import RedisError, ResponseError

from router import keys
from router.asr_jobs import drop_jobs_of_calls
from router.outbox import Writes
from router.slots import is_cluster
from router.stored_calls import StoredCalls
from router.tasks import stop_tasks

log = logging.getLogger(__name__)


class CallEraser:
    """Finds a caller's stored calls and deletes every trace of them from Redis and this process's outbox."""

    def __init__(self, redis: Any, *, stored: StoredCalls, writes: Writes, queues: Sequence[str],
                 tombstone_s: int) -> None:
        """Use the store's client, summaries (``stored``) and ``writes``; ``queues``: every queue's name.

        ``tombstone_s``: how long an erased call's tombstone outlives it (so a write for it still
        waiting in some process's outbox is dropped when replayed): the store's retention plus the
        longest call.
        """
        self.redis = redis
        self.stored = stored
        self.writes = writes
        self.queues = tuple(queues)
        self.tombstone_s = tombstone_s

    async def calls_of_caller(self, *, numbers: Sequence[str], number_hashes: Sequence[str]) -> list[dict[str, str]]:
        """Return (call_sid, status, started_at) of every stored call from ``numbers`` or their salted hashes.

        ``numbers``: the forms one caller's identity may be stored in.
        """
        wanted, hashes = set(filter(None, numbers)), set(filter(None, number_hashes))
        rows = await self.stored.summaries_between(0, math.inf,
                                                   ("call_sid", "caller", "caller_hash", "status", "started_at"))
        return [{k: r.get(k, "") for k in ("call_sid", "status", "started_at")} for r in rows
                if r.get("call_sid") and (r.get("caller") in wanted or r.get("caller_hash") in hashes)]

    async def erase_calls(self, call_sids: Sequence[str], *, numbers: Sequence[str] = ()) -> int:
        """Delete every stored trace of these calls; return how many summaries were deleted.

        Their summaries, timelines, stream records, index and queue entries go, an agent's pointer
        to one of them, and the analytics roll-ups of the hours they started in (recounted,
        without them, when next asked). This process's outbox spool and dead-letter file lose
        every write naming one of the calls or ``numbers`` (the erased caller's).

        Raises:
            RedisError: Redis could not answer; what was deleted stays deleted, and repeating the
                request deletes the rest.
        """
        if not call_sids:
            return 0
        starts = [await self.redis.hget(keys.call(sid), "started_at") for sid in call_sids]
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in call_sids:
                # the tombstone first: a write for the call still waiting in some process's outbox
                # (Redis was down for it) is dropped when replayed, not written back
                pipe.set(keys.erased(sid), "1", ex=self.tombstone_s)
            for sid in call_sids:
                pipe.delete(keys.call(sid))
                for key in (keys.timeline(sid), keys.announced(sid), keys.stream_owner(sid)):
                    pipe.delete(key)
                pipe.zrem(keys.calls_index(), sid)
                pipe.srem(keys.calls_live(), sid)
                for q in self.queues:
                    pipe.zrem(keys.queue(q), sid)
                pipe.delete(keys.settled(sid))
            replies = await pipe.execute()
        per_call = 4 + 2 + len(self.queues) + 1
        deleted = sum(int(replies[len(call_sids) + i * per_call]) for i in range(len(call_sids)))
        erased = set(call_sids)
        for agent_id in await self.redis.smembers(keys.agents()):
            if await self.redis.hget(keys.agent(agent_id), "current_call") in erased:
                await self.redis.hdel(keys.agent(agent_id), "current_call")
        await self.drop_rollups(starts)
        forgotten = await self.writes.forget([*call_sids, *numbers])
        if forgotten:
            log.info("erasure: %d spooled writes removed", forgotten)
        return deleted

    async def drop_rollups(self, starts: Sequence[str | None]) -> None:
        """Delete the analytics roll-ups of the hours these call start times fall in (recounted when next read)."""
        for hour in sorted({int(float(t) // 3600) for t in starts if t}):
            async for name in self.redis.scan_iter(match=keys.analytics_hour_pattern(hour), count=500):
                await self.redis.delete(name)


class DiskScrubber:
    """Carries erasures and opt-outs to the job streams and Redis's files."""

    def __init__(self, redis: Any, *, jobs_redis: Any | None = None, delay_s: float = 2.0) -> None:
        """Use ``redis`` for the rewrite, ``jobs_redis`` (bytes replies) for the job streams, if any."""
        self.redis = redis
        self.jobs_redis = jobs_redis
        self.delay_s = delay_s
        self.rewrites = 0
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background task that runs the requested rewrites."""
        self._task = asyncio.create_task(self._run(), name="disk-scrubber")

    async def stop(self) -> None:
        """Stop the background task (a rewrite already asked of Redis goes on there)."""
        if self._task is not None:
            await stop_tasks([self._task])

    async def erased(self, call_sids: Iterable[str]) -> None:
        """Reach what the erasure of these calls left outside their keys."""
        await self._drop_jobs([s for s in call_sids if s])
        self._wanted.set()

    async def opted_out(self, call_sid: str) -> None:
        """Reach what a caller's opt-out left outside the call's keys (its jobs, the files on disk)."""
        await self._drop_jobs([call_sid])
        self._wanted.set()

    async def _drop_jobs(self, call_sids: list[str]) -> None:
        if self.jobs_redis is None or not call_sids:
            return
        try:
            await drop_jobs_of_calls(self.jobs_redis, call_sids)
        except (RedisError, OSError) as exc:  # jobs expire with their deadline and the age trim anyway
            log.warning("queued transcription jobs of %d calls not deleted (%s)", len(call_sids), exc)

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            await asyncio.sleep(self.delay_s)  # erasures arriving together share one rewrite
            self._wanted.clear()
            try:
                done = await self._rewrite()
            except (RedisError, OSError) as exc:
                log.warning("Redis's files not rewritten after an erasure (%s); retrying", exc)
                done = False
            if not done:
                self._wanted.set()

    async def _rewrite(self) -> bool:
        """Ask Redis (every primary of a cluster) to rewrite its files; False: ask again later."""
        targets: list[dict[str, Any]] = ([{"target_nodes": node} for node in self.redis.get_primaries()]
                                         if is_cluster(self.redis) else [{}])
        done = [await self._rewrite_one(target) for target in targets]
        return all(done)

    async def _rewrite_one(self, target: dict[str, Any]) -> bool:
        info = await self.redis.info("persistence", **target)
        if int(info.get("aof_rewrite_in_progress", 0)):
            return False  # that rewrite forked before the deletion: ask once it is done
        if int(info.get("aof_enabled", 0)):
            try:
                await self.redis.bgrewriteaof(**target)
            except ResponseError as exc:
                if "in progress" in str(exc):
                    return False
                raise
        if await self._snapshots_configured(target):
            with contextlib.suppress(ResponseError):  # "already in progress": that one ends with a save too
                await self.redis.execute_command("BGSAVE", "SCHEDULE", **target)
        self.rewrites += 1
        log.info("erasure: Redis%s asked to rewrite its append-only file%s",
                 f" node {target['target_nodes'].name}" if target else "",
                 "" if int(info.get("aof_enabled", 0)) else " (off: nothing to rewrite)")
        return True

    async def _snapshots_configured(self, target: dict[str, Any]) -> bool:
        try:
            save = await self.redis.config_get("save", **target)
        except ResponseError:  # CONFIG renamed or disabled (managed Redis, the embedded one): unknown
            return False
        return bool(str(save.get("save", "")).strip())
