"""Read models for the dashboards, computed from what router/ stored in Redis."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from dashboards.cues import anger_duration, caller_cues, readings_of
from dashboards.insights import Tally
from router.phases import PHASES, parse_phase_stats
from router.policy import Policy
from router.store import CallStore

CSV_FIELDS = ("call_sid", "caller", "caller_hash", "started_at", "ended_at", "status", "queue", "priority", "reason",
              "rule",
              "first_emotion", "emotion", "first_valence", "last_valence", "intents", "keypad", "escalated",
              "anger_rose", "rerouted", "asked_manager", "peak_anger", "repeat_caller", "opted_out", "csat",
              "enqueued_at", "picked_at", "agent", "decision_latency_ms", "end_reason", "model",
              *(f"{p}_{m}" for p in PHASES for m in ("anger", "valence")))


async def agent_state(store: CallStore, policy: Policy, agent_id: str) -> dict[str, Any]:
    """Return the caller connected to the agent, else the next one in their queues, with cues."""
    agent = await store.desk.get_agent(agent_id)
    if agent is None:
        return {"agent": agent_id, "registered": False, "mode": "none", "cues": None}
    sid = agent.get("current_call", "")
    mode = "connected"
    if sid:
        call = await store.get_call(sid)
        if not call or call.get("status") == "ended" or call.get("agent") != agent_id:
            sid = ""
    if not sid:
        mode = "next"
        sid = await store.desk.queue_head([q for q in agent.get("skills", "").split(",") if q]) or ""
    if not sid:
        return {"agent": agent_id, "registered": True, "name": agent.get("name", ""), "mode": "none", "cues": None}
    summary = await store.get_call(sid) or {}
    timeline = await store.get_timeline(sid)
    return {"agent": agent_id, "registered": True, "name": agent.get("name", ""), "mode": mode,
            "cues": caller_cues(summary, timeline, policy.cues)}


async def wallboard(store: CallStore, policy: Policy, now: float | None = None) -> dict[str, Any]:
    """Return live calls (emotion, queue, priority, wait, anger duration), queue figures and alerts."""
    now = now or time.time()
    calls = await store.list_calls(live_only=True, limit=1000)
    rows, alerts = [], []
    for call in calls:
        sid = call["call_sid"]
        entries = await store.get_timeline(sid, count=400, latest=True)
        anger_s = anger_duration(readings_of(entries), policy.alerts.anger_probability)
        waiting = call.get("status") == "queued" and call.get("enqueued_at")
        wait_s = round(now - float(call["enqueued_at"]), 1) if waiting else None
        row: dict[str, Any] = {
            "call_sid": sid, "caller": call.get("caller", ""), "status": call.get("status", ""),
            "phase": call.get("phase", ""),
            "emotion": call.get("emotion", ""), "queue": call.get("queue", ""),
            "priority": int(call["priority"]) if call.get("priority") else None, "wait_s": wait_s,
            "anger_s": anger_s, "reason": call.get("reason", ""), "agent": call.get("agent", ""),
            "started_at": float(call.get("started_at", now)),
        }
        row["alerts"] = []
        if anger_s >= policy.alerts.anger_seconds:
            row["alerts"].append(f"anger high for {anger_s:.0f} s")
        if wait_s is not None and wait_s >= policy.alerts.max_wait_seconds:
            row["alerts"].append(f"waiting {wait_s:.0f} s")
        alerts += [{"call_sid": sid, "alert": a} for a in row["alerts"]]
        rows.append(row)
    rows.sort(key=lambda r: (-(r["priority"] or 0), r["started_at"]))
    queues = await store.desk.queue_stats(now)
    return {"now": now, "calls": rows, "alerts": alerts,
            "queues": {q: {k: v for k, v in s.items() if k != "calls"} for q, s in queues.items()}}


# what the CSV export reads of each call (its columns, the phase means' source, the caller hash)
CSV_READ_FIELDS = tuple(dict.fromkeys((*(f for f in CSV_FIELDS if not f.endswith(("_anger", "_valence"))
                                        or f in ("peak_anger", "first_valence", "last_valence")),
                                       "phase_stats", "caller_hash")))
ANALYTICS_FIELDS = ("queue", "first_emotion", "started_at", "first_valence", "last_valence", "picked_at",
                    "enqueued_at", "decided_at", "escalated", "priority")


async def summaries_between(
    store: CallStore, start: float, end: float, fields: tuple[str, ...] | None = None
) -> list[dict[str, str]]:
    """Return the summaries (all fields, or only ``fields``) of calls that started in [start, end]."""
    return await store.stored.summaries_between(start, end, fields)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def analytics_of(rows: list[dict[str, str]], queues: list[str]) -> dict[str, Any]:
    """Return aggregate figures of call summaries (pure; see summaries_between and insights.Tally)."""
    return Tally.of(rows, {}).analytics(queues)


def calls_csv(rows: list[dict[str, str]]) -> str:
    """Return the call summaries as CSV (one row per call, fixed columns), oldest first."""
    return csv_header() + csv_rows(sorted(rows, key=lambda r: float(r.get("started_at", 0))))


def csv_header() -> str:
    """Return the CSV export's header line."""
    out = io.StringIO()
    csv.DictWriter(out, fieldnames=CSV_FIELDS).writeheader()
    return out.getvalue()


def csv_rows(rows: list[dict[str, str]]) -> str:
    """Return CSV lines for these call summaries, in the order given (no header)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
    for r in rows:
        flat = dict(r)
        for phase, (_, anger, valence) in parse_phase_stats(r.get("phase_stats")).items():
            flat[f"{phase}_anger"], flat[f"{phase}_valence"] = str(anger), str(valence)
        writer.writerow({k: _csv_safe(str(flat.get(k, ""))) for k in CSV_FIELDS})
    return out.getvalue()


def _csv_safe(value: str) -> str:
    # A cell starting with = + - @ (or a tab or carriage return before one) runs as a formula in a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(value) else value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


class AgentView:
    """An agent's cue card kept up to date from live events, reading Redis only when the caller shown may change.

    A reading, transcript or partial of the caller shown updates the card from the event itself;
    a decision, phase change, pickup or end (which can change who is connected or next in line:
    a caller keying their identification is not next yet) re-reads it.
    Events about other callers cost nothing.
    """

    RELOAD_ON = frozenset({"started", "decision", "keypad", "reroute", "reprioritise", "pickup", "ended", "opted_out",
                           "phase"})

    def __init__(self, store: CallStore, policy: Policy, agent_id: str) -> None:
        """Follow ``agent_id``'s card."""
        self.store, self.policy, self.agent_id = store, policy, agent_id
        self.state: dict[str, Any] = {}
        self.reloads = 0
        self._summary: dict[str, str] = {}
        self._timeline: list[dict[str, Any]] = []

    @property
    def call_sid(self) -> str:
        """Return the caller shown ("" when none)."""
        cues = self.state.get("cues") or {}
        return str(cues.get("call_sid", ""))

    async def reload(self) -> dict[str, Any]:
        """Read the card from Redis; return it."""
        self.reloads += 1
        self.state = await agent_state(self.store, self.policy, self.agent_id)
        sid = self.call_sid
        self._summary = (await self.store.get_call(sid) or {}) if sid else {}
        self._timeline = await self.store.get_timeline(sid, count=400, latest=True) if sid else []
        return self.state

    async def apply(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Return the new card if ``event`` changed it, else None."""
        kind, sid = event.get("type"), event.get("call_sid")
        if kind in self.RELOAD_ON:
            before = self.state
            after = await self.reload()
            return after if after != before else None
        if not sid or sid != self.call_sid:
            return None
        if kind == "reading":
            entry = {"type": "reading", "t": event.get("t", 0.0), "start": event.get("start", event.get("t", 0.0)),
                     "kind": event.get("segment", "utterance"), "label": event.get("label", ""),
                     "probs": event.get("probs", {}), "arousal": event.get("arousal", 0.0),
                     "valence": event.get("valence", 0.0)}
            if event.get("transcript"):
                entry["transcript"] = event["transcript"]
                self._summary["partial_transcript"] = ""
            self._timeline.append(entry)
        elif kind == "transcript":
            self._timeline.append({"type": "transcript", "t": event.get("t", 0.0),
                                   "transcript": event.get("transcript", "")})
            self._summary["partial_transcript"] = ""
        elif kind == "partial":
            self._summary["partial_transcript"] = str(event.get("transcript", ""))
        else:
            return None
        if event.get("intents"):
            self._summary["intents"] = ",".join(event["intents"])
        del self._timeline[:-400]
        self.state = {**self.state, "cues": caller_cues(self._summary, self._timeline, self.policy.cues)}
        return self.state
