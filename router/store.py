"""The call store: per-call timeline (Redis Stream), call summary (hash), queues, live events.

It writes a call's life (start, readings, transcripts, decisions, phases, the end, opt-outs and
erasure); beside it, sharing its client, ``stored`` (router.stored_calls) reads stored calls for
analytics and exports, ``desk`` (router.agent_desk) keeps the agents and hands out calls, and
``logins`` (router.logins) the dashboards' sign-in state.

Every multi-key write is one MULTI/EXEC transaction (on a Redis Cluster, one per hash slot it
touches: router.slots), written through ``writes`` (router.outbox.Writes): when Redis cannot be
reached the write goes to an ``Outbox`` (in memory and a JSONL spool file) and is replayed, in
order, once Redis answers again, so a Redis outage loses nothing that was heard or decided.

Queues on a Redis Cluster: a call's hash and timeline live in the CallSid's slot, the queues in
the ``{queues}`` slot, so placing a call and taking one are two steps, each atomic in its slot.
The call side (status, reason, timeline) is checked and written by one script, the queue side by
another that reads only its own slot: a call that left the queues for good (an agent took it, it
ended) has a claim marker there (``keys.settled``), set in the same step that removes it from
the queues, and a placement arriving after that marker is refused. "Take next" claims a call on
the queue side first (only one agent can), then writes the pickup on the call side. Every
interleaving of two such steps ends with the call where the later of them put it, never in a
queue after an agent took it or it ended.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from router import keys
from router.agent_desk import AgentDesk
from router.erasure import CallEraser
from router.logins import Logins
from router.outbox import REDIS_DOWN, Outbox, Writes
from router.policy import Decision
from router.slots import Op, is_cluster
from router.stored_calls import StoredCalls

log = logging.getLogger(__name__)
# A call's side of placing it in a queue or of an agent taking it: unless the step no longer
# applies, its summary fields, a timeline entry and its event. ARGV[1], the step: "decision" (first
# decision or keypad route; not once it is with an agent or ended), "update" (re-route or new
# priority; only while still queued) or "pickup" (an agent has it; not once it ended).
# KEYS: the call's hash and timeline. Returns 1 when applied, 0 when not.
CALL_SIDE_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'ended' then return 0 end
if ARGV[1] ~= 'pickup' and status == 'with_agent' then return 0 end
if ARGV[1] == 'update' and status ~= 'queued' then return 0 end
local summary = cjson.decode(ARGV[2])
for k, v in pairs(summary) do redis.call('HSET', KEYS[1], k, v) end
local flat = {}
for k, v in pairs(cjson.decode(ARGV[3])) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', unpack(flat))
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
"""
# The same placement, queue side: unless the call left the queues for good (KEYS[1], its claim
# marker), it goes into KEYS[2] and out of the other queues; a re-route or new priority also needs
# it still in a queue. Returns 1 when applied, 0 when not.
PLACE_CALL_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[1] ~= 'decision' then
  local queued = false
  for i = 2, #KEYS do
    if redis.call('ZSCORE', KEYS[i], ARGV[2]) then queued = true end
  end
  if not queued then return 0 end
end
for i = 3, #KEYS do redis.call('ZREM', KEYS[i], ARGV[2]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""
# Accept a call's first Media Stream: it must have been announced by a signed voice webhook, and
# have no stream yet, and its caller must not have refused the analysis, nor the call been erased.
# Returns 1 accepted, 0 never announced (or expired), -1 a stream exists already, -2 the caller opted
# out, -3 the call was erased (a replayed webhook or stream).
CLAIM_STREAM_LUA = """
if redis.call('EXISTS', KEYS[4]) == 1 then return -3 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[3], 'opted_out') == '1' then return -2 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
return -1
"""


ANNOUNCE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return 1
"""
# A call with no stream record (a keyed or surveyed call whose stream never started): its start and
# the expiry every call record has; a streamed call's record is left as it is (its index entry is
# added NX beside this script, in the index's slot).
ADOPT_CALL_LUA = """
if redis.call('HEXISTS', KEYS[1], 'started_at') == 0 then
  redis.call('HSET', KEYS[1], 'call_sid', ARGV[1], 'started_at', ARGV[2])
end
for i = 1, 2 do
  if redis.call('TTL', KEYS[i]) == -1 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end
end
return 1
"""


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
    phase: str = ""  # the call phase it was heard in (router.phases)
    original: str = ""  # what the caller said in their own language, when ``transcript`` is its translation
    language: str = ""  # the caller's language (ISO 639-1) once identified
    line: dict[str, Any] | None = None  # the line's quality (audio_models.line_quality.LineQuality.as_dict)
    noisy: bool = False  # the line was too poor for this reading's tone to steer routing


# what an opt-out deletes from a call's summary: everything the analysis produced
ANALYSED_FIELDS = ("emotion", "first_emotion", "first_valence", "last_valence", "last_t", "model", "transcript",
                   "partial_transcript", "intents", "phase_stats", "peak_anger", "asked_manager", "anger_rose",
                   "rule", "language", "original_transcript", "noisy_line")


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
        timeline_max: int = 5000,
        max_call_s: float = 3600.0,
        identification_max_s: float = 0.0,
        archive: bool = True,
    ) -> None:
        """Use ``client`` (decode_responses=True) and ``outbox`` for writes Redis misses.

        Every call's keys expire ``retention_s`` after it ends, and, should its end never be
        written, ``retention_s + max_call_s`` after it starts; its timeline keeps at most about
        ``timeline_max`` entries. ``identification_max_s``: the longest a caller can take over the
        identification steps (``Policy.identification_max_s``); "take next" passes over a call that
        entered them less than that long ago (0: never passes over a call).
        """
        # decode_responses=True makes every reply str; redis-py's stubs cannot say so.
        self.redis: Any = client
        self.outbox = outbox
        self.retention_s = retention_s
        self.seconds_per_point = seconds_per_point
        self.queues = tuple(queues)
        self.timeline_max = timeline_max
        self.max_call_s = max_call_s
        self.identification_max_s = identification_max_s
        self.archive = archive  # hand finished calls to the archivers (off: no history store)
        self.cluster = is_cluster(client)
        # how a write reaches Redis, or waits in the outbox and is replayed
        self.writes = Writes(client, outbox, cluster=self.cluster, on_replayed=self._replayed)
        # the stored calls' summaries as analytics and exports read them, and the hourly roll-ups
        self.stored = StoredCalls(client, cluster=self.cluster, outbox=outbox)
        # a caller's calls found and erased (a data subject's right to erasure)
        self.erasure = CallEraser(client, stored=self.stored, writes=self.writes, queues=self.queues,
                                  tombstone_s=int(retention_s + max_call_s))
        # dashboard sign-in state: failed-login counters and signed-out sessions
        self.logins = Logins(client)
        # agents, the queues' state and "take next"
        self.desk = AgentDesk(client, queues=self.queues, cluster=self.cluster,
                              claim_ttl_s=int(retention_s + max_call_s), identification_max_s=identification_max_s,
                              apply=self._apply, write=self.write, pickup=self._pickup)

    async def _apply(self, ops: list[Op]) -> list[Any]:
        return await self.writes.apply(ops)

    async def write(self, ops: list[Op]) -> bool:
        """Apply one transaction now, or queue it in the outbox; return True if it reached Redis."""
        return await self.writes.write(ops)

    async def write_result(self, ops: list[Op]) -> tuple[bool, list[Any] | None]:
        """Like :meth:`write`, also returning the transaction's replies when it reached Redis."""
        return await self.writes.write_result(ops)

    async def flush_outbox(self) -> int:
        """Replay the outbox in order (router.outbox.Writes.flush); return how many reached Redis."""
        return await self.writes.flush()

    @property
    def redis_up(self) -> bool:
        """Whether the last write or replay reached Redis."""
        return self.writes.redis_up

    async def _replayed(self, sids: set[str]) -> None:
        """Drop the roll-ups of the hours replayed calls started in (another process may have counted them)."""
        await self.erasure.drop_rollups([await self.redis.hget(keys.call(sid), "started_at") for sid in sorted(sids)])

    @property
    def events_channel(self) -> str:
        """Return the pub/sub channel the store publishes every call event on."""
        return keys.events_channel()

    def events_pubsub(self) -> Any:
        """Return a new pub/sub connection (subscribe it to :attr:`events_channel`)."""
        return self.redis.pubsub()

    def _event(self, kind: str, call_sid: str, **data: Any) -> Op:
        payload = json.dumps({"type": kind, "call_sid": call_sid, "ts": time.time(), **data})
        return ("publish", [keys.events_channel(), payload], {})

    def _xadd(self, call_sid: str, fields: dict[str, Any]) -> Op:
        return ("xadd", [keys.timeline(call_sid), fields], {"maxlen": self.timeline_max, "approximate": True})

    async def announce_call(self, *, call_sid: str, ttl_s: float) -> bool | None:
        """Record that a signed voice webhook announced this call (its stream may start within ``ttl_s``).

        Return False when Redis could not store it, None when the call was erased (a replayed
        webhook: nothing is recorded).
        """
        try:
            done = await self.redis.eval(ANNOUNCE_LUA, 2, keys.announced(call_sid), keys.erased(call_sid),
                                         max(1, int(ttl_s)))
        except RedisError as exc:
            log.warning("call %s: announcement not stored (%s)", call_sid, exc)
            return False
        return True if int(done) else None

    async def adopt_call(self, *, call_sid: str, at: float) -> None:
        """Make a keyed or surveyed call whose stream never started reachable by retention and erasure.

        After its keypad or survey writes: a start time, an index entry and an expiry.
        """
        await self.write([("eval", [ADOPT_CALL_LUA, 2, keys.call(call_sid), keys.timeline(call_sid),
                                    call_sid, at, int(self.retention_s + self.max_call_s)], {}),
                          ("zadd", [keys.calls_index(), {call_sid: at}], {"nx": True})])

    async def claim_stream(self, *, call_sid: str, stream_sid: str) -> int:
        """Return 1 if this stream is the announced call's first, 0 if never announced, -1 if it has one.

        -2 if the caller already refused the analysis (pressed the key before the stream connected),
        -3 if the call was erased.

        Raises:
            RedisError: Redis could not answer (the caller decides what a local record allows).
        """
        return int(await self.redis.eval(CLAIM_STREAM_LUA, 4, keys.announced(call_sid), keys.stream_owner(call_sid),
                                         keys.call(call_sid), keys.erased(call_sid), stream_sid,
                                         int(self.retention_s + self.max_call_s)))

    async def call_started(
        self, *, call_sid: str, stream_sid: str, caller: str, started_at: float, agent_hint: str = "",
        owner: str = "", caller_hash: str = "",
    ) -> bool:
        """Record a new call as listening, held by process ``owner``; its keys expire even if it never ends.

        ``caller_hash`` (salted, router.phases.caller_hash) lets analytics count repeat callers.
        """
        summary = {"call_sid": call_sid, "stream_sid": stream_sid, "caller": caller,
                   "started_at": started_at, "status": "listening", "owner": owner, "phase": "greeting"}
        if caller_hash:
            summary["caller_hash"] = caller_hash
        if agent_hint:
            summary["agent_hint"] = agent_hint
        ttl = int(self.retention_s + self.max_call_s)
        ops: list[Op] = [
            ("hset", [keys.call(call_sid)], {"mapping": summary}),
            ("zadd", [keys.calls_index(), {call_sid: started_at}], {}),
            ("sadd", [keys.calls_live(), call_sid], {}),
            ("zremrangebyscore", [keys.calls_index(), 0, started_at - self.retention_s], {}),
            self._xadd(call_sid, {"type": "started", "t": 0.0, "caller": caller}),
            ("expire", [keys.call(call_sid), ttl], {}),
            ("expire", [keys.timeline(call_sid), ttl], {}),
            self._event("started", call_sid, caller=caller),
        ]
        if owner:
            ops.append(("sadd", [keys.proc_calls(owner), call_sid], {}))
        return await self.write(ops)

    async def add_reading(self, *, call_sid: str, reading: ReadingRecord,
                          summary_extra: dict[str, Any] | None = None) -> bool:
        """Append one emotion reading to the call's timeline (``summary_extra``: more summary fields)."""
        fields = {
            "type": "reading", "t": round(reading.t, 3), "kind": reading.kind,
            "start": round(reading.start_s, 3), "end": round(reading.end_s, 3),
            "label": reading.label, "probs": json.dumps(reading.probs),
            "arousal": reading.arousal, "valence": reading.valence, "model": reading.model,
        }
        if reading.phase:
            fields["phase"] = reading.phase
        if reading.line:
            fields["line"] = json.dumps(reading.line, sort_keys=True)
        if reading.noisy:
            fields["noisy"] = "1"
        summary: dict[str, Any] = {"emotion": reading.label, "model": reading.model,
                                   "last_valence": reading.valence, "last_t": round(reading.t, 3),
                                   "noisy_line": "1" if reading.noisy else "0", **(summary_extra or {})}
        if reading.language:
            summary["language"] = reading.language
        if reading.transcript:
            fields.update({"transcript": reading.transcript, "intents": ",".join(reading.intents)})
            summary.update({"transcript": reading.transcript, "partial_transcript": "",
                            "original_transcript": reading.original})
            if reading.original:
                fields.update({"original": reading.original, "language": reading.language})
            if reading.intents:
                summary["intents"] = ",".join(reading.intents)
        if reading.sentiment is not None:
            fields["sentiment"] = reading.sentiment
        ops: list[Op] = [
            self._xadd(call_sid, fields),
            ("hsetnx", [keys.call(call_sid), "first_emotion", reading.label], {}),
            ("hsetnx", [keys.call(call_sid), "first_valence", reading.valence], {}),
            ("hset", [keys.call(call_sid)], {"mapping": summary}),
            self._event("reading", call_sid, label=reading.label, probs=reading.probs,
                        arousal=reading.arousal, valence=reading.valence, t=reading.t,
                        start=reading.start_s, segment=reading.kind,
                        transcript=reading.transcript, intents=list(reading.intents),
                        original=reading.original, language=reading.language, line=reading.line or {},
                        noisy=reading.noisy),
        ]
        return await self.write(ops)

    async def add_transcript(
        self, *, call_sid: str, t: float, text: str, sentiment: float | None, intents: tuple[str, ...],
        original: str = "", language: str = "", heard_again: bool = False,
    ) -> bool:
        """Append a (redacted) transcript that arrived after its emotion reading (``original``: before translation).

        ``heard_again``: the English recogniser's reading of an utterance first taken for another
        language (the caller keyed that they speak English).
        """
        fields: dict[str, Any] = {"type": "transcript", "t": round(t, 3), "transcript": text,
                                  "intents": ",".join(intents)}
        if heard_again:
            fields["heard_again"] = "1"
        summary: dict[str, Any] = {"transcript": text, "partial_transcript": "", "original_transcript": original}
        if original:
            fields.update({"original": original, "language": language})
        if language:
            summary["language"] = language
        if sentiment is not None:
            fields["sentiment"] = sentiment
        if intents:
            summary["intents"] = ",".join(intents)
        ops: list[Op] = [
            self._xadd(call_sid, fields),
            ("hset", [keys.call(call_sid)], {"mapping": summary}),
            self._event("transcript", call_sid, transcript=text, intents=list(intents), t=t, original=original,
                        language=language),
        ]
        return await self.write(ops)

    async def set_language(self, *, call_sid: str, language: str, probability: float, t: float, route: str = ""
                           ) -> bool:
        """Record the caller's language as identified (a timeline entry, the summary's ``language``)."""
        fields: dict[str, Any] = {"type": "language", "t": round(t, 3), "language": language,
                                  "probability": round(probability, 3), "route": route}
        ops: list[Op] = [
            self._xadd(call_sid, fields),
            ("hset", [keys.call(call_sid)], {"mapping": {"language": language}}),
            self._event("language", call_sid, language=language, probability=round(probability, 3), route=route, t=t),
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
        enqueued: bool = True,
    ) -> bool | None:
        """Queue the call with a routing decision (or a re-route / new priority), atomically.

        ``enqueued`` False: identification steps come first, so the call's wait (``enqueued_at``)
        starts only when it enters the queue phase (:meth:`phase_changed`).

        Return True when applied, False when Redis refused it because the call is with an agent
        or has ended (or, for a re-route or new priority, is no longer queued), None when Redis
        could not be reached (the write waits in the outbox and is checked the same way on replay).
        """
        summary: dict[str, str] = {"status": "queued", "queue": decision.queue,
                                   "priority": str(decision.priority), "reason": decision.reason,
                                   "rule": decision.rule}
        if kind in ("reroute", "reprioritise"):
            summary["escalated"] = "1"
            summary["rerouted" if kind == "reroute" else "anger_rose"] = "1"
        if kind in ("decision", "keypad") and enqueued:
            summary["enqueued_at"] = str(arrival)
        if kind == "decision":
            summary["decided_at"] = str(time.time())
            if latency_ms is not None:
                summary["decision_latency_ms"] = str(round(latency_ms, 2))
        score = queue_score(decision.priority, arrival, self.seconds_per_point)
        entry = {"type": kind, "t": str(round(t, 3)), "queue": decision.queue, "priority": str(decision.priority),
                 "reason": decision.reason}
        event = json.dumps({"type": kind, "call_sid": call_sid, "ts": time.time(), "queue": decision.queue,
                            "priority": decision.priority, "reason": decision.reason})
        mode = "decision" if kind in ("decision", "keypad") else "update"
        others = [keys.queue(q) for q in self.queues if q != decision.queue]
        call_side = [CALL_SIDE_LUA, 2, keys.call(call_sid), keys.timeline(call_sid), mode, json.dumps(summary),
                     json.dumps(entry), event, keys.events_channel(), self.timeline_max]
        queue_side = [PLACE_CALL_LUA, 2 + len(others), keys.settled(call_sid), keys.queue(decision.queue), *others,
                      mode, call_sid, score]
        reached, replies = await self.write_result([("eval", call_side, {}), ("eval", queue_side, {})])
        if not reached or replies is None:
            return None
        return bool(replies[0]) and bool(replies[1])

    async def call_ended(self, *, call_sid: str, t: float, reason: str, owner: str = "") -> bool:
        """Mark the call ended, take it out of live/queues (and its owner's set), and start its retention clock."""
        ops = self._leave_queues(call_sid, "ended")
        if owner:
            ops.append(("srem", [keys.proc_calls(owner), call_sid], {}))
        ops += [
            ("hset", [keys.call(call_sid)], {"mapping": {"status": "ended", "ended_at": time.time(),
                                                         "end_reason": reason}}),
            ("srem", [keys.calls_live(), call_sid], {}),
            self._xadd(call_sid, {"type": "ended", "t": round(t, 3), "reason": reason}),
            ("expire", [keys.call(call_sid), int(self.retention_s)], {}),
            ("expire", [keys.timeline(call_sid), int(self.retention_s)], {}),
            *([self._hand_off(call_sid)] if self.archive else []),
            self._event("ended", call_sid, reason=reason),
        ]
        return await self.write(ops)

    def _hand_off(self, call_sid: str) -> Op:
        """Return the op that hands a finished call to the archivers (router.archive)."""
        return ("xadd", [keys.archive(), {"call_sid": call_sid}], {"maxlen": 1_000_000, "approximate": True})

    def _leave_queues(self, call_sid: str, why: str) -> list[Op]:
        """Return the queue-side ops of a call leaving the queues for good: out of each, its claim marker set."""
        ops: list[Op] = [("zrem", [keys.queue(q), call_sid], {}) for q in self.queues]
        ops.append(("set", [keys.settled(call_sid), why], {"ex": int(self.retention_s + self.max_call_s)}))
        return ops

    async def mark_with_agent(self, *, call_sid: str, agent_id: str, source: str) -> bool:
        """Record that an agent has the call (TaskRouter reported it assigned); it leaves every queue."""
        now = time.time()
        started = await self.redis.hget(keys.call(call_sid), "started_at")
        if started is None:
            return False
        ops = self._leave_queues(call_sid, "with_agent")
        ops.append(self._pickup(call_sid, agent_id, {"type": "pickup", "agent": agent_id,
                                                     "t": round(now - float(started), 3), "source": source}, now))
        return await self.write(ops)

    async def phase_changed(self, *, call_sid: str, phase: str, t: float | None) -> bool:
        """Record that the call entered ``phase`` at call time ``t`` (a band on its timeline).

        ``t`` None (no process holds the call's stream, so no audio clock): the seconds since the
        call started, by the wall clock (0 when Redis cannot say). Entering the queue phase starts
        the call's wait (``enqueued_at``), after any identification.
        """
        now = time.time()
        if t is None:
            try:
                started = await self.redis.hget(keys.call(call_sid), "started_at")
            except REDIS_DOWN:
                started = None
            t = max(0.0, now - float(started)) if started else 0.0
        fields: dict[str, Any] = {"phase": phase, "phase_at": now}
        if phase == "queue":
            fields["enqueued_at"] = now
        ops: list[Op] = [
            self._xadd(call_sid, {"type": "phase", "phase": phase, "t": round(t, 3)}),
            ("hset", [keys.call(call_sid)], {"mapping": fields}),
            self._event("phase", call_sid, phase=phase, t=t),
        ]
        return await self.write(ops)

    async def hand_off(self, call_sid: str) -> bool:
        """Hand a call to the archivers again (its survey was answered after it ended)."""
        return await self.write([self._hand_off(call_sid)]) if self.archive else True

    async def mark(self, *, call_sid: str, fields: dict[str, Any], entry: dict[str, Any] | None = None) -> bool:
        """Set summary ``fields`` on an existing call (and append ``entry`` to its timeline)."""
        ops: list[Op] = [("hset", [keys.call(call_sid)], {"mapping": fields})]
        if entry:
            ops.append(self._xadd(call_sid, entry))
            ops.append(self._event(str(entry.get("type", "mark")), call_sid,
                                   **{k: v for k, v in entry.items() if k != "type"}))
        return await self.write(ops)

    async def opt_out(self, *, call_sid: str, t: float, via: str) -> bool:
        """Delete everything analysed of the call and keep only that the caller opted out.

        The timeline (readings, transcripts, reasons naming the tone) is deleted and started
        again with the call's start and the opt-out; the summary loses every analysed field.
        Routing facts (queue, priority, times) stay: the call still has to be served.
        """
        ttl = int(self.retention_s + self.max_call_s)
        ops: list[Op] = [
            ("delete", [keys.timeline(call_sid)], {}),
            ("hdel", [keys.call(call_sid), *ANALYSED_FIELDS], {}),
            ("hset", [keys.call(call_sid)], {"mapping": {"opted_out": "1", "opted_out_via": via,
                                                         "reason": "caller opted out of analysis"}}),
            self._xadd(call_sid, {"type": "started", "t": 0.0}),
            self._xadd(call_sid, {"type": "opted_out", "t": round(t, 3), "via": via}),
            ("expire", [keys.timeline(call_sid), ttl], {}),
            self._event("opted_out", call_sid, via=via),
        ]
        return await self.write(ops)

    async def release(self, *, call_sid: str, owner: str) -> bool:
        """Stop holding a call whose stream ended early (opt-out): it is not over, nobody streams it."""
        ops: list[Op] = [("hset", [keys.call(call_sid)], {"mapping": {"owner": ""}})]
        if owner:
            ops.append(("srem", [keys.proc_calls(owner), call_sid], {}))
        return await self.write(ops)

    async def owner_of(self, call_sid: str) -> str:
        """Return the id of the web process holding the call's stream ("" if none is recorded)."""
        return str(await self.redis.hget(keys.call(call_sid), "owner") or "")

    async def get_call(self, call_sid: str) -> dict[str, str] | None:
        """Return the call summary, or None if unknown."""
        data = await self.redis.hgetall(keys.call(call_sid))
        return data or None

    async def get_timeline(self, call_sid: str, *, count: int = 10_000, latest: bool = False) -> list[dict[str, Any]]:
        """Return the call's timeline entries, oldest first, with probs decoded.

        With ``latest``, the newest ``count`` entries (still oldest first) instead of the oldest.
        """
        if latest:
            entries = list(reversed(await self.redis.xrevrange(keys.timeline(call_sid), count=count)))
        else:
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

    def _pickup(self, call_sid: str, agent_id: str, entry: dict[str, Any], now: float) -> Op:
        """Return the call-side op of an agent having the call (nothing if it ended meanwhile)."""
        summary = {"status": "with_agent", "agent": agent_id, "picked_at": str(now)}
        event = json.dumps({"type": "pickup", "call_sid": call_sid, "ts": now, "agent": agent_id})
        return ("eval", [CALL_SIDE_LUA, 2, keys.call(call_sid), keys.timeline(call_sid), "pickup",
                         json.dumps(summary), json.dumps({k: str(v) for k, v in entry.items()}), event,
                         keys.events_channel(), self.timeline_max], {})

