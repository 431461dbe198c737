"""The call store: per-call timeline (Redis Stream), call summary (hash), queues, live events.

Every multi-key write is one MULTI/EXEC transaction. When Redis cannot be
reached the write goes to an :class:`Outbox` (in memory and a JSONL spool file)
and is replayed, in order, once Redis answers again, so a Redis outage loses
nothing that was heard or decided.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from router import keys
from router.policy import Decision

log = logging.getLogger(__name__)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)

Op = tuple[str, list[Any], dict[str, Any]]
"""One Redis command: (method name on a redis-py pipeline, args, kwargs), JSON-serialisable."""


class Outbox:
    """Transactions that could not reach Redis, oldest first, mirrored to a spool file."""

    def __init__(self, spool: Path | None, *, max_items: int = 100_000) -> None:
        """Keep at most ``max_items`` transactions; the spool file survives a restart."""
        self.spool = spool
        self.max_items = max_items
        self.pending: deque[list[Op]] = deque()
        self.dropped = 0
        if spool and spool.exists():
            for line in spool.read_text().splitlines():
                if line.strip():
                    self.pending.append([tuple(op) for op in json.loads(line)])  # type: ignore[misc]
            if self.pending:
                log.warning("outbox: %d transactions from %s await Redis", len(self.pending), spool)

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, ops: list[Op]) -> None:
        """Queue one transaction (and append it to the spool file)."""
        if len(self.pending) >= self.max_items:
            self.pending.popleft()
            self.dropped += 1
            log.error("outbox full (%d): oldest transaction dropped", self.max_items)
        self.pending.append(ops)
        if self.spool:
            self.spool.parent.mkdir(parents=True, exist_ok=True)
            with self.spool.open("a") as fh:
                fh.write(json.dumps(ops) + "\n")

    def rewrite_spool(self) -> None:
        """Make the spool file hold exactly what is still pending."""
        if not self.spool:
            return
        if not self.pending:
            self.spool.unlink(missing_ok=True)
            return
        tmp = self.spool.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(ops) + "\n" for ops in self.pending))
        tmp.replace(self.spool)


@dataclass(frozen=True)
class ReadingRecord:
    """One emotion reading as stored in a call's timeline."""

    t: float
    kind: str
    start_s: float
    end_s: float
    label: str
    probs: dict[str, float]
    arousal: float
    valence: float
    model: str
    transcript: str = ""
    sentiment: float | None = None
    intents: tuple[str, ...] = ()


def queue_score(priority: int, arrival: float, seconds_per_point: float) -> float:
    """Return the queue score: lower is served first; each ``seconds_per_point`` waited = 1 priority."""
    return arrival - priority * seconds_per_point


class CallStore:
    """Reads and writes of calls, timelines and queues."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        outbox: Outbox,
        retention_s: float,
        seconds_per_point: float,
        queues: Sequence[str],
    ) -> None:
        """Use ``client`` (decode_responses=True) and ``outbox`` for writes Redis misses."""
        # decode_responses=True makes every reply str; redis-py's stubs cannot say so.
        self.redis: Any = client
        self.outbox = outbox
        self.retention_s = retention_s
        self.seconds_per_point = seconds_per_point
        self.queues = tuple(queues)
        self.redis_up = True
        self._flush_lock = asyncio.Lock()

    async def _apply(self, ops: list[Op]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for name, args, kwargs in ops:
                getattr(pipe, name)(*args, **kwargs)
            await pipe.execute()

    async def write(self, ops: list[Op]) -> bool:
        """Apply one transaction now, or queue it; return True if it reached Redis."""
        if self.outbox.pending:
            await self.flush_outbox()
        if not self.outbox.pending:
            try:
                await self._apply(ops)
                self.redis_up = True
                return True
            except REDIS_DOWN as exc:
                log.warning("Redis unreachable (%s): write kept in the outbox", exc)
                self.redis_up = False
        self.outbox.add(ops)
        return False

    async def flush_outbox(self) -> int:
        """Replay queued transactions in order; return how many reached Redis."""
        done = 0
        async with self._flush_lock:
            while self.outbox.pending:
                try:
                    await self._apply(self.outbox.pending[0])
                except REDIS_DOWN:
                    self.redis_up = False
                    break
                self.outbox.pending.popleft()
                done += 1
            if done:
                self.redis_up = True
                self.outbox.rewrite_spool()
                log.info("outbox: %d transactions written to Redis, %d left", done, len(self.outbox))
        return done

    def _event(self, kind: str, call_sid: str, **data: Any) -> Op:
        payload = json.dumps({"type": kind, "call_sid": call_sid, "ts": time.time(), **data})
        return ("publish", [keys.events_channel(), payload], {})

    async def call_started(
        self, *, call_sid: str, stream_sid: str, caller: str, started_at: float, agent_hint: str = ""
    ) -> bool:
        """Record a new call as listening."""
        summary = {"call_sid": call_sid, "stream_sid": stream_sid, "caller": caller,
                   "started_at": started_at, "status": "listening"}
        if agent_hint:
            summary["agent_hint"] = agent_hint
        ops: list[Op] = [
            ("hset", [keys.call(call_sid)], {"mapping": summary}),
            ("zadd", [keys.calls_index(), {call_sid: started_at}], {}),
            ("sadd", [keys.calls_live(), call_sid], {}),
            ("zremrangebyscore", [keys.calls_index(), 0, started_at - self.retention_s], {}),
            ("xadd", [keys.timeline(call_sid), {"type": "started", "t": 0.0, "caller": caller}], {}),
            self._event("started", call_sid, caller=caller),
        ]
        return await self.write(ops)

    async def add_reading(self, *, call_sid: str, reading: ReadingRecord) -> bool:
        """Append one emotion reading to the call's timeline."""
        fields = {
            "type": "reading", "t": round(reading.t, 3), "kind": reading.kind,
            "start": round(reading.start_s, 3), "end": round(reading.end_s, 3),
            "label": reading.label, "probs": json.dumps(reading.probs),
            "arousal": reading.arousal, "valence": reading.valence, "model": reading.model,
        }
        summary: dict[str, Any] = {"emotion": reading.label, "model": reading.model,
                                   "last_valence": reading.valence, "last_t": round(reading.t, 3)}
        if reading.transcript:
            fields.update({"transcript": reading.transcript, "intents": ",".join(reading.intents)})
            summary.update({"transcript": reading.transcript, "partial_transcript": ""})
            if reading.intents:
                summary["intents"] = ",".join(reading.intents)
        if reading.sentiment is not None:
            fields["sentiment"] = reading.sentiment
        ops: list[Op] = [
            ("xadd", [keys.timeline(call_sid), fields], {}),
            ("hsetnx", [keys.call(call_sid), "first_emotion", reading.label], {}),
            ("hsetnx", [keys.call(call_sid), "first_valence", reading.valence], {}),
            ("hset", [keys.call(call_sid)], {"mapping": summary}),
            self._event("reading", call_sid, label=reading.label, probs=reading.probs,
                        arousal=reading.arousal, valence=reading.valence, t=reading.t,
                        transcript=reading.transcript, intents=list(reading.intents)),
        ]
        return await self.write(ops)

    async def add_transcript(
        self, *, call_sid: str, t: float, text: str, sentiment: float | None, intents: tuple[str, ...]
    ) -> bool:
        """Append a (redacted) transcript that arrived after its emotion reading."""
        fields: dict[str, Any] = {"type": "transcript", "t": round(t, 3), "transcript": text,
                                  "intents": ",".join(intents)}
        summary: dict[str, Any] = {"transcript": text, "partial_transcript": ""}
        if sentiment is not None:
            fields["sentiment"] = sentiment
        if intents:
            summary["intents"] = ",".join(intents)
        ops: list[Op] = [
            ("xadd", [keys.timeline(call_sid), fields], {}),
            ("hset", [keys.call(call_sid)], {"mapping": summary}),
            self._event("transcript", call_sid, transcript=text, intents=list(intents), t=t),
        ]
        return await self.write(ops)

    async def add_partial(self, *, call_sid: str, t: float, text: str, intents: tuple[str, ...]) -> bool:
        """Publish what the caller has said so far in the utterance still going on (redacted).

        Partials are not trajectory entries (the utterance's final transcript is); the summary
        keeps the latest one for the agent's card until that final arrives.
        """
        ops: list[Op] = [
            ("hset", [keys.call(call_sid)], {"mapping": {"partial_transcript": text}}),
            self._event("partial", call_sid, transcript=text, intents=list(intents), t=t),
        ]
        return await self.write(ops)

    async def record_decision(
        self,
        *,
        call_sid: str,
        decision: Decision,
        t: float,
        arrival: float,
        latency_ms: float | None,
        kind: str = "decision",
    ) -> bool:
        """Store a routing decision (or a re-prioritisation) and place the call in its queue."""
        summary: dict[str, Any] = {"status": "queued", "queue": decision.queue,
                                   "priority": decision.priority, "reason": decision.reason,
                                   "rule": decision.rule}
        if kind != "decision":
            summary["escalated"] = 1
        if kind == "decision":
            summary["decided_at"] = time.time()
            summary["enqueued_at"] = arrival
            if latency_ms is not None:
                summary["decision_latency_ms"] = round(latency_ms, 2)
        score = queue_score(decision.priority, arrival, self.seconds_per_point)
        ops: list[Op] = [("zrem", [keys.queue(q), call_sid], {}) for q in self.queues
                         if q != decision.queue]
        ops += [
            ("zadd", [keys.queue(decision.queue), {call_sid: score}], {}),
            ("hset", [keys.call(call_sid)], {"mapping": summary}),
            ("xadd", [keys.timeline(call_sid), {"type": kind, "t": round(t, 3), "queue": decision.queue,
                                                "priority": decision.priority,
                                                "reason": decision.reason}], {}),
            self._event(kind, call_sid, queue=decision.queue, priority=decision.priority,
                        reason=decision.reason),
        ]
        return await self.write(ops)

    async def call_ended(self, *, call_sid: str, t: float, reason: str) -> bool:
        """Mark the call ended, take it out of live/queues, and start its retention clock."""
        ops: list[Op] = [("zrem", [keys.queue(q), call_sid], {}) for q in self.queues]
        ops += [
            ("hset", [keys.call(call_sid)], {"mapping": {"status": "ended", "ended_at": time.time(),
                                                         "end_reason": reason}}),
            ("srem", [keys.calls_live(), call_sid], {}),
            ("xadd", [keys.timeline(call_sid), {"type": "ended", "t": round(t, 3), "reason": reason}], {}),
            ("expire", [keys.call(call_sid), int(self.retention_s)], {}),
            ("expire", [keys.timeline(call_sid), int(self.retention_s)], {}),
            self._event("ended", call_sid, reason=reason),
        ]
        return await self.write(ops)

    async def get_call(self, call_sid: str) -> dict[str, str] | None:
        """Return the call summary, or None if unknown."""
        data = await self.redis.hgetall(keys.call(call_sid))
        return data or None

    async def get_timeline(self, call_sid: str, *, count: int = 10_000) -> list[dict[str, Any]]:
        """Return the call's timeline entries, oldest first, with probs decoded."""
        entries = await self.redis.xrange(keys.timeline(call_sid), count=count)
        out = []
        for entry_id, fields in entries:
            item: dict[str, Any] = {"id": entry_id, **fields}
            if "probs" in item:
                item["probs"] = json.loads(item["probs"])
            out.append(item)
        return out

    async def list_calls(self, *, live_only: bool = False, limit: int = 100) -> list[dict[str, str]]:
        """Return call summaries, newest first."""
        if live_only:
            sids = sorted(await self.redis.smembers(keys.calls_live()))
        else:
            sids = await self.redis.zrevrange(keys.calls_index(), 0, limit - 1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids[:limit]:
                pipe.hgetall(keys.call(sid))
            rows = await pipe.execute()
        calls = [r for r in rows if r]
        return sorted(calls, key=lambda c: float(c.get("started_at", 0)), reverse=True)

    async def queue_stats(self, now: float) -> dict[str, dict[str, Any]]:
        """Return per-queue depth, oldest wait (s) and waiting calls in service order."""
        stats: dict[str, dict[str, Any]] = {}
        for q in self.queues:
            sids = await self.redis.zrange(keys.queue(q), 0, -1)
            arrivals = []
            if sids:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for sid in sids:
                        pipe.hmget(keys.call(sid), "enqueued_at", "priority")
                    rows = await pipe.execute()
                arrivals = [(sid, float(a or now), int(p or 0)) for sid, (a, p) in zip(sids, rows, strict=True)]
            stats[q] = {
                "depth": len(sids),
                "oldest_wait_s": round(max((now - a for _, a, _ in arrivals), default=0.0), 1),
                "calls": [{"call_sid": s, "priority": p, "wait_s": round(now - a, 1)} for s, a, p in arrivals],
            }
        return stats

    async def register_agent(self, *, agent_id: str, name: str, skills: Sequence[str]) -> None:
        """Create or update an agent and the queues they serve."""
        unknown = set(skills) - set(self.queues)
        if unknown:
            raise ValueError(f"unknown queues in skills: {sorted(unknown)}")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.agents(), agent_id)
            pipe.hset(keys.agent(agent_id), mapping={"name": name, "skills": ",".join(skills)})
            await pipe.execute()

    async def get_agent(self, agent_id: str) -> dict[str, str] | None:
        """Return an agent's hash, or None."""
        data = await self.redis.hgetall(keys.agent(agent_id))
        return data or None

    async def take_next(self, *, agent_id: str) -> str | None:
        """Pop the best waiting call across the agent's queues and assign it (WATCH-guarded)."""
        agent = await self.get_agent(agent_id)
        if agent is None:
            raise KeyError(agent_id)
        queue_keys = [keys.queue(q) for q in agent.get("skills", "").split(",") if q]
        if not queue_keys:
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*queue_keys)
                    best: tuple[float, str, str] | None = None
                    for qk in queue_keys:
                        head = await pipe.zrange(qk, 0, 0, withscores=True)
                        if head and (best is None or head[0][1] < best[0]):
                            best = (head[0][1], head[0][0], qk)
                    if best is None:
                        await pipe.unwatch()
                        return None
                    _, sid, qk = best
                    started = await pipe.hget(keys.call(sid), "started_at")
                    now = time.time()
                    pipe.multi()
                    pipe.zrem(qk, sid)
                    pipe.hset(keys.call(sid), mapping={"status": "with_agent", "agent": agent_id,
                                                       "picked_at": now})
                    pipe.hset(keys.agent(agent_id), mapping={"current_call": sid})
                    # t: seconds since the call started, like the other timeline entries
                    t = round(now - float(started), 3) if started else 0.0
                    pipe.xadd(keys.timeline(sid), {"type": "pickup", "agent": agent_id, "t": t})
                    pipe.publish(keys.events_channel(),
                                 json.dumps({"type": "pickup", "call_sid": sid, "agent": agent_id, "ts": now}))
                    await pipe.execute()
                    return sid
                except aioredis.WatchError:
                    continue
