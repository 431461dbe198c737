"""A synthetic, clearly labelled week of call history for the demo's analytics (``emoroute demo --synthetic-week``).

A newcomer's analytics page after three simulated calls is near-empty. This writes what a
supervisor would see after a week: calls through the day, topics routed to their queues, the
phases with their emotion means (identification is where valence drops most, the agent phase
where good agents bring it back), waits, keypad presses, escalations, opt-outs, repeat callers,
surveys that follow the trajectory and six agents who calm callers to different degrees.

Every call is marked synthetic (``calls.synthetic`` in the store, ``synthetic: "1"`` in its
summary) and the analytics say how many of the period's calls are synthetic. Nothing here is a
measurement: the proportions are made up to exercise every chart, seeded so that the same week
comes back each time.
"""

from __future__ import annotations

import json
import math
import random
import time
from typing import Any

from router.history import CallRecord, HistoryStore

# topic -> (queue, share of calls, how much angrier its callers start)
TOPICS = {"cancel": ("retention", 0.14, 0.35), "complaint": ("retention", 0.10, 0.45),
          "billing_dispute": ("general", 0.14, 0.25), "purchase": ("sales", 0.12, -0.15),
          "upgrade": ("sales", 0.10, -0.2), "": ("general", 0.40, 0.0)}
AGENTS = {"agent-ana": 0.6, "agent-ben": 0.45, "agent-chloe": 0.35, "agent-dev": 0.2, "agent-eli": 0.05,
          "agent-fay": 0.4}  # how much each agent lifts a caller's valence
KEYS = {"1": "cancel", "2": "", "3": "purchase"}
DAY = 86400.0


def _hour_weight(hour: int) -> float:
    """Calls per hour of the day: a morning and an afternoon peak, few at night."""
    return 0.08 + math.exp(-((hour - 10) ** 2) / 6) + 0.8 * math.exp(-((hour - 15) ** 2) / 5)


def synthetic_summaries(*, days: int = 7, per_day: int = 420, end: float | None = None,
                        seed: int = 2026) -> list[dict[str, str]]:
    """Return ``days`` x about ``per_day`` synthetic call summaries ending at ``end``, as Redis holds them."""
    rng = random.Random(seed)
    end = time.time() if end is None else end
    start = end - days * DAY
    weights = [_hour_weight(h) for h in range(24)]
    callers = [f"synthetic-caller-{i:05d}" for i in range(int(days * per_day * 0.8))]
    topics, shares = list(TOPICS), [t[1] for t in TOPICS.values()]
    out: list[dict[str, str]] = []
    for day in range(days + 1):  # the days the period touches: the first and the last in part
        midnight = math.floor(start / DAY) * DAY + day * DAY
        for hour in rng.choices(range(24), weights, k=int(per_day * rng.uniform(0.85, 1.15))):
            at = midnight + hour * 3600 + rng.uniform(0, 3600)
            if start <= at <= end - 600:
                out.append(_call(rng, at, rng.choices(topics, shares)[0], rng.choice(callers)))
    out.sort(key=lambda s: float(s["started_at"]))
    return out


def _call(rng: random.Random, at: float, topic: str, caller: str) -> dict[str, str]:
    """One synthetic call's summary."""
    queue, _, anger_bias = TOPICS[topic]
    anger = min(0.95, max(0.02, rng.betavariate(2, 5) + anger_bias * rng.random()))
    valence = round(max(-1.0, min(1.0, 0.4 - 1.2 * anger + rng.gauss(0, 0.15))), 3)
    first = "angry" if anger > 0.55 else "sad" if valence < -0.15 else "happy" if valence > 0.35 else "neutral"
    sid = f"CA{rng.getrandbits(128):032x}"
    s: dict[str, str] = {"call_sid": sid, "synthetic": "1", "caller_hash": caller, "started_at": repr(at),
                         "status": "ended", "queue": queue, "first_emotion": first, "first_valence": repr(valence),
                         "model": "synthetic", "intents": topic, "end_reason": "completed"}
    if rng.random() < 0.1:  # the menu key stated the topic
        key = rng.choice([k for k, v in KEYS.items() if v == topic] or ["2"])
        s.update(keypad=key, intents="" if KEYS.get(key) == topic else topic)
    if rng.random() < 0.03:  # refused the analysis: only what routing needs is kept
        s.update(opted_out="1", first_emotion="", first_valence="", intents="")
        s.update(ended_at=repr(at + rng.uniform(60, 400)), priority="3", decided_at=repr(at + 6))
        return s
    decided = at + rng.uniform(4, 9)
    ident = valence - rng.uniform(0.05, 0.45)  # identification: where callers sour
    wait = rng.expovariate(1 / (150 if queue == "retention" else 90))
    in_queue = ident - min(0.5, wait / 600) + rng.gauss(0, 0.05)
    agent = rng.choice(list(AGENTS))
    with_agent = max(-1.0, min(1.0, in_queue + AGENTS[agent] + rng.gauss(0, 0.15)))
    stats = {"greeting": [rng.randint(1, 3), round(anger, 3), valence],
             "identification": [rng.randint(1, 3), round(min(0.99, anger + 0.08), 3), round(ident, 3)],
             "queue": [rng.randint(1, 6), round(min(0.99, anger + wait / 1500), 3), round(in_queue, 3)],
             "agent": [rng.randint(3, 12), round(max(0.01, anger - AGENTS[agent] / 2), 3), round(with_agent, 3)]}
    peak = min(0.99, anger + wait / 1200 + rng.uniform(0, 0.1))
    rose = peak > anger + 0.25
    asked = topic == "complaint" and anger > 0.5 and rng.random() < 0.5
    rerouted = rng.random() < 0.04
    csat = max(1, min(5, round(3.4 + 2.0 * with_agent - 1.5 * max(0.0, peak - 0.6) + rng.gauss(0, 0.6))))
    s.update(priority=str(max(1, min(10, round(3 + 6 * anger + 2 * asked)))), decided_at=repr(decided),
             enqueued_at=repr(decided + 20), picked_at=repr(decided + 20 + wait), agent=agent,
             last_valence=repr(round(with_agent, 3)), peak_anger=repr(round(peak, 3)),
             emotion="angry" if with_agent < -0.45 else "happy" if with_agent > 0.35 else "neutral",
             phase_stats=json.dumps(stats), ended_at=repr(decided + 20 + wait + rng.uniform(90, 600)))
    for flag, on in (("anger_rose", rose), ("asked_manager", asked), ("rerouted", rerouted),
                     ("escalated", rose or asked or rerouted)):
        if on:
            s[flag] = "1"
    if rng.random() < 0.45:
        s["csat"] = str(csat)
    return s


def synthetic_timeline(s: dict[str, str]) -> list[dict[str, str]]:
    """Return a synthetic call's timeline as the live path writes one: phases, readings, decision, pickup, end."""
    at = float(s["started_at"])
    if s.get("opted_out") == "1":
        ended_t = repr(round(float(s["ended_at"]) - at, 3))
        return [{"type": "started", "t": "0.0"}, {"type": "opted_out", "t": "4.0"},
                {"type": "ended", "t": ended_t, "reason": "completed"}]
    stats = json.loads(s["phase_stats"])
    decided, queued = float(s["decided_at"]) - at, float(s["enqueued_at"]) - at
    picked, ended = float(s["picked_at"]) - at, float(s["ended_at"]) - at
    spans = {"greeting": (0.0, decided), "identification": (decided, queued), "queue": (queued, picked),
             "agent": (picked, ended)}
    out: list[dict[str, str]] = [{"type": "started", "t": "0.0"}]  # a call starts in the greeting phase
    for phase, (lo, hi) in spans.items():
        if phase != "greeting":
            out.append({"type": "phase", "phase": phase, "t": repr(round(lo, 3))})
        if phase == "identification":
            out.append({"type": "decision", "t": repr(round(lo, 3)), "queue": s["queue"], "priority": s["priority"],
                        "reason": "synthetic call"})
        if phase == "agent":
            out.append({"type": "pickup", "t": repr(round(lo, 3)), "agent": s["agent"], "source": "synthetic"})
        _, anger, valence = stats[phase]
        for k in range(2 if hi - lo > 8 else 1):
            t = lo + (k + 1) * (hi - lo) / 3
            label = ("angry" if anger > 0.5 else "happy" if valence > 0.35 else "sad" if valence < -0.3
                     else "neutral")
            weights = {"happy": 1.6 if label == "happy" else 0.7, "neutral": 1.6 if label == "neutral" else 1.0,
                       "sad": 1.4 if label == "sad" else 0.7}
            probs = {"angry": round(anger, 3), **{k: round((1 - anger) * w / sum(weights.values()), 3)
                                                  for k, w in weights.items()}}
            out.append({"type": "reading", "t": repr(round(t, 3)), "kind": "utterance",
                        "start": repr(round(t - 2, 3)), "end": repr(round(t, 3)), "label": label,
                        "probs": json.dumps(probs), "arousal": repr(round(anger - 0.2, 3)),
                        "valence": repr(valence), "model": "synthetic", "phase": phase})
    if s.get("csat"):
        out.append({"type": "survey", "t": repr(round(ended - 20, 3)), "score": s["csat"]})
    out.append({"type": "ended", "t": repr(round(ended, 3)), "reason": "completed"})
    return out


def seed_week(history: HistoryStore, **kwargs: Any) -> int:
    """Write a synthetic week (:func:`synthetic_summaries`) to ``history``, replacing any earlier one.

    Return how many calls it wrote.
    """
    rows = synthetic_summaries(**kwargs)
    history.erase_synthetic()
    for i in range(0, len(rows), 2000):
        history.write([CallRecord(s["call_sid"], s, synthetic_timeline(s)) for s in rows[i: i + 2000]],
                      archived_at=time.time(),
                      key_intents={k: v for k, v in KEYS.items() if v})
    return len(rows)
