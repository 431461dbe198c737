"""The durable hand-off of finished calls from Redis to the history store (router.history).

When a call ends, and again when its survey is answered, the call store adds its CallSid to the
``emoroute:archive`` stream (in the same transaction as the write that ended it). Archivers (one
inside each ``emoroute serve`` by default, or ``emoroute archiver`` on its own) read the stream
with one consumer group: each takes a batch, reads the calls' summaries and timelines from
Redis, writes them to the store in one transaction (a call written twice replaces itself), and
only then acknowledges and deletes the entries. A batch an archiver took and never acknowledged
(it died) is reclaimed by another after ``claim_idle_ms``. A call erased before its turn has no
summary left and is skipped; an erasure after it reaches the store too (emoroute.web.api).

Once a call is in the store, Redis keeps it only as long as the live views need it: its keys
(summary, timeline, queue claim marker) are set to expire after ``live_s`` (hours), where they
would have lasted the whole retention period. A later write (the survey) hands the call over
again, and the archiver shortens it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.exceptions import RedisError, ResponseError

from router import keys
from router.history import CallRecord, HistoryStore

log = logging.getLogger(__name__)
GROUP = "archiver"
# expire a key after ARGV[1] seconds unless it expires sooner already (EXPIRE ... LT needs Redis 7)
SHORTEN_LUA = """
for _, key in ipairs(KEYS) do
  local ttl = redis.call('TTL', key)
  if ttl == -1 or ttl > tonumber(ARGV[1]) then redis.call('EXPIRE', key, ARGV[1]) end
end
return 1
"""


class StoreFailed(Exception):
    """The history store refused or could not take a batch (nothing was acknowledged)."""


class Archiver:
    """Moves finished calls from Redis to the history store, each once, acknowledged after the commit."""

    def __init__(self, redis: Any, history: HistoryStore, *, consumer: str, batch: int = 200,
                 claim_idle_ms: int = 30_000, block_ms: int = 500, retention_s: float | None = None,
                 purge_every_s: float = 3600.0, live_s: float | None = None,
                 key_intents: dict[str, str] | None = None) -> None:
        """Use ``redis`` (str replies) and ``history``; ``consumer`` names this archiver in the group.

        ``block_ms``: how long one read waits for new calls (under the client's socket timeout).
        ``retention_s``: calls that started longer ago are deleted from the store, checked every
        ``purge_every_s`` (None: kept). ``live_s``: how long Redis keeps a call once archived
        (None: its retention). ``key_intents``: the keypad's topics (keypad key -> intent).
        """
        self.redis = redis
        self.history = history
        self.consumer = consumer
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self.retention_s = retention_s
        self.purge_every_s = purge_every_s
        self.live_s = live_s
        self.key_intents = key_intents or {}
        self._purged_at = float("-inf")
        self.stopping = asyncio.Event()  # set: the loop ends between two batches (router.tasks.stop_tasks)
        self.archived = 0
        self.failures = 0
        self._own_pending = True  # at start and after a failure: entries this consumer took and never acknowledged

    async def ensure_group(self) -> None:
        """Create the stream's consumer group if it does not exist."""
        try:
            await self.redis.xgroup_create(keys.archive(), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run_once(self, block_ms: int | None = None) -> int:
        """Archive one batch (a dead archiver's first, then new calls); return how many calls were written.

        Raises:
            RedisError: Redis could not be read (nothing was acknowledged).
            Exception: the store refused the batch (nothing was acknowledged; it is taken again).
        """
        entries: list[Any] = []
        if self._own_pending:  # its own unacknowledged batch first (Redis restarted, the store refused it)
            got = await self.redis.xreadgroup(GROUP, self.consumer, {keys.archive(): "0"}, count=self.batch)
            entries = [e for _, stream_entries in got or [] for e in stream_entries]
            self._own_pending = bool(entries)
        if not entries:
            _, entries, *_ = await self.redis.xautoclaim(keys.archive(), GROUP, self.consumer,
                                                         min_idle_time=self.claim_idle_ms, start_id="0-0",
                                                         count=self.batch)
        if not entries:
            got = await self.redis.xreadgroup(GROUP, self.consumer, {keys.archive(): ">"}, count=self.batch,
                                              block=self.block_ms if block_ms is None else block_ms)
            entries = [e for _, stream_entries in got or [] for e in stream_entries]
        entries = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
        if not entries:
            return 0
        sids = list(dict.fromkeys(fields.get("call_sid", "") for _, fields in entries if fields.get("call_sid")))
        records = []
        for sid in sids:
            summary = await self.redis.hgetall(keys.call(sid))
            if summary:  # gone: erased (or expired) before its turn
                timeline = [fields for _, fields in await self.redis.xrange(keys.timeline(sid))]
                records.append(CallRecord(sid, summary, timeline))
        try:
            written = await asyncio.to_thread(self.history.write, records, archived_at=time.time(),
                                              key_intents=self.key_intents)
        except Exception as exc:  # its network errors are OSErrors too: not to be taken for Redis's
            raise StoreFailed(str(exc)) from exc
        if self.live_s is not None and records:
            await self._shorten([r.call_sid for r in records])
        ids = [entry_id for entry_id, _ in entries]
        # one transaction: a crash between the two left entries acknowledged but never deleted, which
        # nothing reads again, so the hand-off stream never emptied (seen once in CI under test_history)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(keys.archive(), GROUP, *ids)
            pipe.xdel(keys.archive(), *ids)
            await pipe.execute()
        self.archived += written
        return written

    async def _shorten(self, sids: list[str]) -> None:
        """Let Redis keep these archived calls ``live_s`` more seconds at most (one round trip)."""
        ttl = max(1, int(self.live_s or 0))
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:  # a call's two keys share its slot; the claim marker lies in the queues' slot
                pipe.eval(SHORTEN_LUA, 2, keys.call(sid), keys.timeline(sid), ttl)
                pipe.eval(SHORTEN_LUA, 1, keys.settled(sid), ttl)
            await pipe.execute()

    async def purge_due(self) -> int:
        """Delete the calls past their retention from the store, if a purge is due; return how many."""
        if self.retention_s is None or time.monotonic() - self._purged_at < self.purge_every_s:
            return 0
        try:
            gone = await asyncio.to_thread(self.history.purge, started_before=time.time() - self.retention_s)
        except Exception as exc:  # noqa: BLE001 - see run_once
            raise StoreFailed(str(exc)) from exc
        self._purged_at = time.monotonic()
        if gone:
            log.info("archiver: %d calls past their retention deleted from the history store", gone)
        return gone

    async def run(self) -> None:
        """Archive until :attr:`stopping` is set; a Redis or store failure is logged and retried after a pause."""
        await self.ensure_group()
        while not self.stopping.is_set():
            try:
                await self.purge_due()
                await self.run_once()
            except StoreFailed as exc:  # archiving goes on; the batch is taken again
                self.failures += 1
                self._own_pending = True
                log.warning("archiver: the history store refused a batch (%s); retrying in 2 s", exc)
                await asyncio.sleep(2.0)
            except (RedisError, OSError) as exc:
                self._own_pending = True
                log.warning("archiver: Redis unavailable (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
