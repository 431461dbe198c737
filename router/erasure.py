"""What an erasure or an opt-out must reach beyond the live keys: Redis's files and queued jobs.

This process's outbox spools are reached by ``CallStore.erase_calls``.

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
from collections.abc import Iterable
from typing import Any

from redis.exceptions import RedisError, ResponseError

from router.asr_jobs import drop_jobs_of_calls
from router.slots import is_cluster
from router.tasks import stop_tasks

log = logging.getLogger(__name__)


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
