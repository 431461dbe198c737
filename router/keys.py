"""Every Redis key EmoRoute uses, built in one place, with the shape of what it holds.

- ``emoroute:call:{sid}`` HASH, the call summary: call_sid, stream_sid, caller,
  started_at, ended_at, status (listening|queued|with_agent|ended), queue, priority, reason,
  rule, decided_at, decision_latency_ms, agent, emotion (latest label), model.
- ``emoroute:call:{sid}:timeline`` STREAM, one entry per event in the call:
  type=reading (t, kind, start, end, label, probs JSON, arousal, valence, model),
  type=decision|reprioritise (queue, priority, reason), type=pickup (agent),
  type=ended (reason).
- ``emoroute:calls`` ZSET call_sid -> started_at (all calls, newest last).
- ``emoroute:calls:live`` SET of call SIDs not yet ended.
- ``emoroute:queue:{name}`` ZSET call_sid -> arrival - priority * seconds_per_point
  (lowest first: priority first, then arrival; waiting ages a call).
- ``emoroute:agents`` SET of agent ids; ``emoroute:agent:{id}`` HASH name, skills
  (comma list of queues), current_call.
- ``emoroute:call:{sid}:announced`` STRING, set (with a short TTL) by the signed voice
  webhook: the call's Media Stream may start.
- ``emoroute:call:{sid}:stream`` STRING, the StreamSid of the call's one accepted stream.
- ``emoroute:login_failures:{client}`` STRING counter of failed dashboard logins, 60 s TTL.
- ``emoroute:events`` pub/sub channel of JSON events for live dashboards.

Every per-call key carries a TTL from the moment it is written (retention + the maximum call
duration; retention alone once the call has ended).
"""

from __future__ import annotations

PREFIX = "emoroute"


def call(sid: str) -> str:
    """Return the key of a call's summary hash."""
    return f"{PREFIX}:call:{sid}"


def timeline(sid: str) -> str:
    """Return the key of a call's timeline stream."""
    return f"{PREFIX}:call:{sid}:timeline"


def announced(sid: str) -> str:
    """Return the key that says a signed voice webhook announced the call."""
    return f"{PREFIX}:call:{sid}:announced"


def stream_owner(sid: str) -> str:
    """Return the key holding the StreamSid of the call's one accepted Media Stream."""
    return f"{PREFIX}:call:{sid}:stream"


def login_failures(client: str) -> str:
    """Return the key counting failed dashboard logins from one client address."""
    return f"{PREFIX}:login_failures:{client}"


def calls_index() -> str:
    """Return the key of the all-calls index."""
    return f"{PREFIX}:calls"


def calls_live() -> str:
    """Return the key of the live-calls set."""
    return f"{PREFIX}:calls:live"


def queue(name: str) -> str:
    """Return the key of one queue."""
    return f"{PREFIX}:queue:{name}"


def agents() -> str:
    """Return the key of the agent set."""
    return f"{PREFIX}:agents"


def agent(agent_id: str) -> str:
    """Return the key of one agent's hash."""
    return f"{PREFIX}:agent:{agent_id}"


def events_channel() -> str:
    """Return the pub/sub channel for live events."""
    return f"{PREFIX}:events"
