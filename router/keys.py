"""Every Redis key EmoRoute uses, built in one place, with the shape of what it holds.

Per-call keys carry the CallSid as a Redis Cluster hash tag (``emoroute:call:{CA…}…``), so all of
one call's keys share a slot. Keys one script or transaction writes together share a fixed tag:
the queues and their claim markers (``{queues}``), the transcription job streams (``{asr}``, one
XREADGROUP reads all three) and the web processes' registry (``{procs}``). Every multi-key write
stays in one slot, so the same code runs on one Redis and on a Redis Cluster; see
docs/OPERATIONS.md ("Redis keys and sharding").

- ``emoroute:call:{sid}`` HASH, the call summary: call_sid, stream_sid, caller,
  started_at, ended_at, status (listening|queued|with_agent|ended), queue, priority, reason,
  rule, decided_at, decision_latency_ms, agent, emotion (latest label), model.
- ``emoroute:call:{sid}:timeline`` STREAM, one entry per event in the call:
  type=reading (t, kind, start, end, label, probs JSON, arousal, valence, model),
  type=decision|reprioritise (queue, priority, reason), type=pickup (agent),
  type=ended (reason).
- ``emoroute:calls`` ZSET call_sid -> started_at (all calls, newest last).
- ``emoroute:calls:live`` SET of call SIDs not yet ended.
- ``emoroute:{queues}:queue:<name>`` ZSET call_sid -> arrival - priority * seconds_per_point
  (lowest first: priority first, then arrival; waiting ages a call).
- ``emoroute:{queues}:settled:<sid>`` STRING (with_agent | ended), set when a call leaves the
  queues for good, in the queues' slot: a late placement (a re-route racing a pickup) is refused
  there without reading the call's hash in another slot.
- ``emoroute:agents`` SET of agent ids; ``emoroute:agent:{id}`` HASH name, skills
  (comma list of queues), current_call.
- ``emoroute:call:{sid}:announced`` STRING, set (with a short TTL) by the signed voice
  webhook: the call's Media Stream may start.
- ``emoroute:call:{sid}:stream`` STRING, the StreamSid of the call's one accepted stream.
- ``emoroute:login_failures:{client}`` STRING counter of failed dashboard logins, 60 s TTL.
- ``emoroute:events`` pub/sub channel of JSON events for live dashboards.
- ``emoroute:{procs}`` SET of web process ids; ``emoroute:{procs}:<id>`` STRING, the process's
  heartbeat lease (expires when it stops renewing); ``emoroute:{procs}:<id>:calls`` SET of the live
  calls whose Media Stream it holds; ``emoroute:proc:<id>:control`` pub/sub channel of requests
  for those calls (end one, an agent took one); ``emoroute:{procs}:<id>:reaping`` STRING, the lock
  of the process cleaning up after a dead one.
- ``emoroute:{asr}:jobs:<urgency>`` STREAM (urgent | normal | spare), consumer group ``asr``:
  utterances to transcribe (id, reply, deadline, call_sid, pcm16 audio);
  ``emoroute:asr:results:{process}`` STREAM of transcripts for the web process that owns the call;
  ``emoroute:worker:{id}`` HASH, a worker's heartbeat and load; ``emoroute:asr:dropped`` counter of
  jobs dropped past their deadline.
- ``emoroute:archive`` STREAM, consumer group ``archiver``: CallSids of finished (or surveyed)
  calls for the history store (router.archive).
- ``emoroute:analytics:{version}:{hour}`` HASH, the analytics roll-up of the calls that started in
  one closed UTC hour (hour = epoch seconds // 3600): ``tally`` (JSON sums, dashboards.insights.Tally),
  ``listed`` (JSON scatter points and disagreements) and ``callers`` (JSON [caller hash, start]
  pairs, for repeat callers); expires when the hour's calls do.

Every per-call key carries a TTL from the moment it is written (retention + the maximum call
duration; retention alone once the call has ended).
"""

from __future__ import annotations

PREFIX = "emoroute"


def _tag(sid: str) -> str:
    # A Redis Cluster hash tag: every key of one call lands in the same slot.
    return "{" + sid + "}"


def call(sid: str) -> str:
    """Return the key of a call's summary hash."""
    return f"{PREFIX}:call:{_tag(sid)}"


def timeline(sid: str) -> str:
    """Return the key of a call's timeline stream."""
    return f"{PREFIX}:call:{_tag(sid)}:timeline"


def announced(sid: str) -> str:
    """Return the key that says a signed voice webhook announced the call."""
    return f"{PREFIX}:call:{_tag(sid)}:announced"


def stream_owner(sid: str) -> str:
    """Return the key holding the StreamSid of the call's one accepted Media Stream."""
    return f"{PREFIX}:call:{_tag(sid)}:stream"


def erased(sid: str) -> str:
    """Return the tombstone of an erased call: a write replayed later for it is dropped, not applied."""
    return f"{PREFIX}:call:{_tag(sid)}:erased"


_CALL_KEY = f"{PREFIX}:call:{{"


def call_of_key(key: object) -> str | None:
    """Return the call SID a per-call key belongs to, else None."""
    if not isinstance(key, str) or not key.startswith(_CALL_KEY):
        return None
    end = key.find("}", len(_CALL_KEY))
    return key[len(_CALL_KEY):end] if end > 0 else None


def revoked_session(session: str) -> str:
    """Return the key marking a signed-out dashboard session (until the session would have expired)."""
    return f"{PREFIX}:session:revoked:{session}"


def login_failures(client: str) -> str:
    """Return the key counting failed dashboard logins from one client address."""
    return f"{PREFIX}:login_failures:{client}"


def calls_index() -> str:
    """Return the key of the all-calls index."""
    return f"{PREFIX}:calls"


def calls_live() -> str:
    """Return the key of the live-calls set."""
    return f"{PREFIX}:calls:live"


QUEUES_TAG = "{queues}"


def queue(name: str) -> str:
    """Return the key of one queue (every queue shares the ``{queues}`` slot)."""
    return f"{PREFIX}:{QUEUES_TAG}:queue:{name}"


def legacy_queue(name: str) -> str:
    """Return the key a queue had before the queues shared a slot (moved on start, router.store)."""
    return f"{PREFIX}:queue:{name}"


def settled(sid: str) -> str:
    """Return the queue-side marker of a call that left the queues for good (with an agent, or ended)."""
    return f"{PREFIX}:{QUEUES_TAG}:settled:{sid}"


def agents() -> str:
    """Return the key of the agent set."""
    return f"{PREFIX}:agents"


def agent(agent_id: str) -> str:
    """Return the key of one agent's hash."""
    return f"{PREFIX}:agent:{agent_id}"


def events_channel() -> str:
    """Return the pub/sub channel for live events."""
    return f"{PREFIX}:events"


def procs() -> str:
    """Return the key of the set of web process ids (the registry's keys share the ``{procs}`` slot)."""
    return f"{PREFIX}:{{procs}}"


def proc_lease(proc_id: str) -> str:
    """Return the key of a web process's heartbeat lease."""
    return f"{PREFIX}:{{procs}}:{proc_id}"


def proc_calls(proc_id: str) -> str:
    """Return the key of the set of live calls a web process holds."""
    return f"{PREFIX}:{{procs}}:{proc_id}:calls"


def proc_control(proc_id: str) -> str:
    """Return the pub/sub channel of requests for a web process's calls."""
    return f"{PREFIX}:proc:{proc_id}:control"


def proc_reaping(proc_id: str) -> str:
    """Return the key of the lock held while cleaning up after a dead web process."""
    return f"{PREFIX}:{{procs}}:{proc_id}:reaping"


ASR_URGENCIES = ("urgent", "normal", "spare")
ASR_GROUP = "asr"


def asr_jobs(urgency: str) -> str:
    """Return the stream of transcription jobs of one urgency (the three share the ``{asr}`` slot)."""
    return f"{PREFIX}:{{asr}}:jobs:{urgency}"


def asr_results(proc_id: str) -> str:
    """Return the stream of transcription results for one web process."""
    return f"{PREFIX}:asr:results:{proc_id}"


def asr_dropped() -> str:
    """Return the counter of transcription jobs dropped past their deadline."""
    return f"{PREFIX}:asr:dropped"


def worker(worker_id: str) -> str:
    """Return the key of one inference worker's heartbeat and load."""
    return f"{PREFIX}:worker:{worker_id}"


def archive() -> str:
    """Return the stream of finished calls waiting for the history store."""
    return f"{PREFIX}:archive"


def analytics_hour(version: str, hour: int) -> str:
    """Return the key of one closed hour's analytics roll-up (``version`` names what it counts)."""
    return f"{PREFIX}:analytics:{version}:{hour}"


def analytics_hour_pattern(hour: int) -> str:
    """Return the SCAN pattern of one hour's analytics roll-ups, of every version."""
    return f"{PREFIX}:analytics:*:{hour}"
