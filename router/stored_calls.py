"""Stored calls as analytics and exports read them: summaries by start time, and the hourly roll-ups.

Reads only, beside the live store (router.store.CallStore, which holds one of these as ``stored``):
the calls that started in a span, a few fields of many calls at once (one script per 5,000 calls
on one Redis; pipelined HMGETs on a cluster, whose calls lie in many slots), and the analytics
roll-up of each hour, which is not written while this process still holds writes for Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from redis.exceptions import RedisError

from router import keys

log = logging.getLogger(__name__)

# Read the same fields of many calls: one string per call, the values joined by FIELD_SEP (MISSING
# for an absent field, "" for a call with none of them).
FIELD_SEP, MISSING = "\x1f", "\x1e"
READ_FIELDS_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local vals = redis.call('HMGET', key, unpack(ARGV))
  local any = false
  for j = 1, #vals do
    if vals[j] then any = true else vals[j] = '\\30' end
  end
  out[i] = any and table.concat(vals, '\\31') or ''
end
return out
"""


def _unpack(packed: list[str], fields: tuple[str, ...]) -> list[dict[str, str]]:
    return [{k: v for k, v in zip(fields, line.split(FIELD_SEP), strict=True) if v != MISSING}
            for line in packed if line]


class _Pending(Protocol):
    def __len__(self) -> int: ...


class StoredCalls:
    """Reads of stored call summaries and the analytics roll-ups (see the module docstring)."""

    def __init__(self, client: Any, *, cluster: bool, outbox: _Pending) -> None:
        """Read through ``client`` (decode_responses=True); ``outbox``: writes this process still holds for Redis."""
        self.redis: Any = client
        self.cluster = cluster
        self.outbox = outbox

    async def summaries_between(
        self, start: float, end: float, fields: Sequence[str] | None = None, *, end_open: bool = False
    ) -> list[dict[str, str]]:
        """Return the summaries (all fields, or only ``fields``) of calls that started in [start, end].

        ``end_open``: in [start, end) instead (an hour's calls, not the next hour's first).
        """
        sids = await self.redis.zrangebyscore(keys.calls_index(), start, f"({end}" if end_open else end)
        rows: list[dict[str, str]] = []
        if fields:
            async for batch in self.summary_batches(sids, fields):
                rows += batch
            return rows
        for i in range(0, len(sids), 5000):
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in sids[i : i + 5000]:
                    if fields:
                        pipe.hmget(keys.call(sid), *fields)
                    else:
                        pipe.hgetall(keys.call(sid))
                replies = await pipe.execute()
            if fields:
                rows += [{k: v for k, v in zip(fields, r, strict=True) if v is not None} for r in replies if any(r)]
            else:
                rows += [r for r in replies if r]
        return rows

    async def started_bounds(self) -> tuple[float, float] | None:
        """Return the start times of the oldest and the newest stored call (None: no call stored)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(keys.calls_index(), 0, 0, withscores=True)
            pipe.zrange(keys.calls_index(), -1, -1, withscores=True)
            first, last = await pipe.execute()
        return (float(first[0][1]), float(last[0][1])) if first and last else None

    async def call_sids_between(self, start: float, end: float) -> list[str]:
        """Return the SIDs of the calls that started in [start, end], oldest first."""
        return list(await self.redis.zrangebyscore(keys.calls_index(), start, end))

    async def summary_batches(self, sids: Sequence[str], fields: Sequence[str],
                              batch: int = 5000) -> AsyncIterator[list[dict[str, str]]]:
        """Yield the ``fields`` of these calls' summaries, ``batch`` calls at a time, in order.

        One script call per batch, one string per call: 100,000 calls read in about a second. A
        call whose summary has none of the fields (expired, erased) is left out.
        """
        for i in range(0, len(sids), batch):
            names = [keys.call(sid) for sid in sids[i : i + batch]]
            if self.cluster:  # the calls' hashes lie in many slots: one HMGET each, pipelined per node
                async with self.redis.pipeline(transaction=False) as pipe:
                    for name in names:
                        pipe.hmget(name, *fields)
                    rows = await pipe.execute()
                yield [{k: v for k, v in zip(fields, row, strict=True) if v is not None} for row in rows if any(row)]
                continue
            packed = await self.redis.eval(READ_FIELDS_LUA, len(names), *names, *fields)
            # decoding 5,000 rows takes tens of ms: off the event loop, so live calls never wait on it
            yield await asyncio.to_thread(_unpack, packed, tuple(fields))

    async def read_rollups(self, version: str, hours: Sequence[int], field: str) -> list[str | None]:
        """Return one field of each hour's stored analytics roll-up (None where there is none)."""
        if not hours:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for hour in hours:
                pipe.hget(keys.analytics_hour(version, hour), field)
            return list(await pipe.execute())

    async def write_rollup(self, version: str, hour: int, fields: dict[str, str], ttl_s: float) -> bool:
        """Store an hour's analytics roll-up for ``ttl_s`` seconds; False if it was not stored.

        Not written while this process still holds writes for Redis in its outbox (a roll-up must
        count every call of its hour), nor for under a minute; a Redis error is logged.
        """
        if len(self.outbox) or ttl_s < 60:
            return False
        name = keys.analytics_hour(version, hour)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(name, mapping=fields)
                pipe.expire(name, int(ttl_s))
                await pipe.execute()
        except RedisError as exc:
            log.warning("analytics roll-up %s not stored (%s)", name, exc)
            return False
        return True
