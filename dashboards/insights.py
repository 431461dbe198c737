"""What managers buy emotion analytics for: phases, topics, escalation, repeat callers, opt-outs, CSAT, agents.

Pure functions of stored call summaries (router.store writes the fields; router.phases the
per-phase means), so they run the same on the API, the CSV export and the benchmark.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections import Counter, defaultdict
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from router.history import NO_TOPIC, topics_of
from router.phases import PHASES, parse_phase_stats

Stats = dict[str, tuple[int, float, float]]  # phase -> (readings, mean P(angry), mean valence)
INSIGHT_FIELDS = ("call_sid", "queue", "started_at", "first_valence", "last_valence", "first_emotion", "emotion",
                  "intents", "keypad", "phase_stats", "peak_anger", "asked_manager", "anger_rose", "rerouted",
                  "language", "language_check", "language_checked", "caller_hash", "opted_out", "csat", "agent")
WORSE_BY = 0.2  # a mean valence drop larger than this from one phase to the next counts as worsened
MIN_CALLS = 3  # a phase change seen in fewer calls is not named as the one that hurts most
ANGRY_PEAK = 0.6  # a call whose P(angry) reached this counts as having been angry
ESCALATIONS = ("anger_rose", "rerouted", "asked_manager")
UNIDENTIFIED = "unidentified"  # a call whose language was never identified
CHECK_OUTCOMES = ("kept", "english", "switched")  # the language check's answers (no key or another: kept)


def check_outcome(answer: str) -> str:
    """Return what a language check's stored answer (``kept``, ``en`` or a language's code) was."""
    return "kept" if answer in ("", "kept") else "english" if answer == "en" else "switched"


def _f(row: dict[str, str], key: str) -> float | None:
    try:
        return float(row[key]) if row.get(key) not in (None, "") else None
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def hour_and_day(hour: int) -> tuple[str, str]:
    """Return the UTC hour ("YYYY-MM-DD HH:00") and day of an hour counted from the epoch."""
    moment = datetime.fromtimestamp(hour * 3600, UTC)
    return moment.strftime("%Y-%m-%d %H:00"), moment.strftime("%Y-%m-%d")


def _buckets(ts: float) -> tuple[str, str]:
    """Return the UTC hour ("YYYY-MM-DD HH:00") and day of a timestamp (cached per hour: 100k calls, few hours)."""
    return hour_and_day(int(ts // 3600))


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


class Tally:
    """Mergeable sums of call summaries from which every figure but repeat callers is computed.

    ``add`` takes one call's summary; ``merge`` adds another tally (the calls of another hour), so
    an hour's tally can be stored once the hour can no longer change (``dashboards.rollup``) and a
    period's figures merged from its hours. ``to_dict``/``from_dict`` give its JSON form. Scatter
    points and disagreements keep the first ``max_points``/``max_listed`` calls in the order added.
    """

    VERSION = 4  # bump when what a stored tally holds changes (3: calls per language; 4: language checks)

    def __init__(self, key_intents: dict[str, str], *, max_points: int = 2000, max_listed: int = 50) -> None:
        """Count topics with ``key_intents`` (keypad key -> intent)."""
        self.key_intents, self.max_points, self.max_listed = key_intents, max_points, max_listed
        self.d: dict[str, Any] = {"n": 0, "queue": {}, "language": {}, "checks": {}, "emo_queue": {}, "emo_hour": {},
                                  "evolution": {},
                                  "escalated": 0, "priority": [0, 0.0], "wait": [0, 0.0], "phase": {},
                                  "steps": {}, "worse": {}, "topic": {}, "topic_hour": {}, "topic_day": {},
                                  "topic_queue": {}, "topic_emotion": {}, "topic_anger": {}, "esc": {},
                                  "esc_day": {}, "opted": 0, "csat": {}, "csat_sum": 0.0, "pairs": {},
                                  "agents": {}, "points": [], "disagree": []}

    @classmethod
    def of(cls, rows: list[dict[str, str]], key_intents: dict[str, str]) -> Tally:
        """Return the tally of ``rows``."""
        tally = cls(key_intents)
        for r in rows:
            tally.add(r)
        return tally

    def add(self, r: dict[str, str]) -> None:
        """Count one call's summary."""
        d, queue = self.d, r.get("queue") or "undecided"
        d["n"] += 1
        _inc(d["queue"], queue)
        _inc(d["language"], r.get("language") or UNIDENTIFIED)
        if r.get("language_checked"):  # asked at the language check: taken for this language, then what they keyed
            _inc(d["checks"].setdefault(r["language_checked"], {}), check_outcome(r.get("language_check", "")))
        ts = _f(r, "started_at")
        hour, day = _buckets(ts) if ts is not None else ("", "")
        first = r.get("first_emotion", "")
        if first:
            _inc(d["emo_queue"].setdefault(queue, {}), first)
            if ts is not None:
                _inc(d["emo_hour"].setdefault(hour, {}), first)
        fv, lv = _f(r, "first_valence"), _f(r, "last_valence")
        if fv is not None and lv is not None:
            delta = lv - fv
            _inc(d["evolution"], "improved" if delta > WORSE_BY else "worsened" if delta < -WORSE_BY else "unchanged")
        d["escalated"] += r.get("escalated") == "1"
        _acc(d["priority"], _f(r, "priority"))
        # the wait starts when the call enters the queue phase; one taken before that (its
        # identification never reported) waited from the decision
        waited_from = _f(r, "enqueued_at") if r.get("enqueued_at") else _f(r, "decided_at")
        picked = _f(r, "picked_at")
        _acc(d["wait"], picked - waited_from if picked is not None and waited_from is not None else None)
        stats = parse_phase_stats(r.get("phase_stats"))
        self._phases(stats, queue)
        self._topics(r, queue, hour, day, ts is not None)
        flags = [k for k in ESCALATIONS if r.get(k) == "1"]
        for k in (*flags, *(["any"] if flags else [])):
            _inc(d["esc"], k)
        if ts is not None:
            for k in ("calls", *flags, *(["any"] if flags else [])):
                _inc(d["esc_day"].setdefault(day, {}), k)
        d["opted"] += r.get("opted_out") == "1"
        if r.get("csat") in ("1", "2", "3", "4", "5"):
            self._csat(r, stats, lv, fv)
        if r.get("agent"):
            self._agent(r["agent"], stats, _f(r, "csat") if r.get("csat") in ("1", "2", "3", "4", "5") else None)

    def _agent(self, agent: str, stats: Stats, csat: float | None) -> None:
        """Count how the caller fared with the agent who took the call."""
        a = self.d["agents"].setdefault(agent, {"calls": 0, "anger": [0, 0.0], "valence": [0, 0.0], "compared": 0,
                                                "improved": 0, "worsened": 0, "csat": [0, 0.0]})
        a["calls"] += 1
        _acc(a["csat"], csat)
        if "agent" not in stats:
            return
        _, anger, valence = stats["agent"]
        _acc(a["anger"], anger)
        _acc(a["valence"], valence)
        before = [p for p in PHASES[: PHASES.index("agent")] if p in stats]
        if before:  # the phase the caller came from: the queue, or an earlier one
            a["compared"] += 1
            change = valence - stats[before[-1]][2]
            a["improved"] += change > WORSE_BY
            a["worsened"] += change < -WORSE_BY

    def _phases(self, stats: Stats, queue: str) -> None:
        d = self.d
        for phase, (_, anger, valence) in stats.items():
            for scope in ("all", queue):
                acc = d["phase"].setdefault(scope, {}).setdefault(phase, [0, 0.0, 0.0])
                acc[0] += 1
                acc[1] += anger
                acc[2] += valence
        seen = [p for p in PHASES if p in stats]
        for a, b in zip(seen, seen[1:], strict=False):
            _inc(d["steps"], f"{a}>{b}")
            if stats[b][2] < stats[a][2] - WORSE_BY:
                _inc(d["worse"], f"{a}>{b}")

    def _topics(self, r: dict[str, str], queue: str, hour: str, day: str, timed: bool) -> None:
        d = self.d
        label, peak = r.get("first_emotion", ""), _f(r, "peak_anger")
        for t in topics_of(r, self.key_intents) or [NO_TOPIC]:
            _inc(d["topic"], t)
            if timed:
                _inc(d["topic_hour"].setdefault(hour, {}), t)
                _inc(d["topic_day"].setdefault(day, {}), t)
            _inc(d["topic_queue"].setdefault(queue, {}), t)
            if label:
                _inc(d["topic_emotion"].setdefault(t, {}), label)
            if peak is not None:
                acc = d["topic_anger"].setdefault(t, [0, 0])
                acc[0] += 1
                acc[1] += peak >= ANGRY_PEAK

    def _csat(self, r: dict[str, str], stats: Stats, last: float | None, first: float | None) -> None:
        d, score = self.d, float(r["csat"])
        _inc(d["csat"], r["csat"])
        d["csat_sum"] += score
        peak = _f(r, "peak_anger")
        change = None if first is None or last is None else last - first
        values = [("valence_change", change), ("end_valence", last), ("peak_anger", peak),
                  *((f"{phase}_valence", v) for phase, (_, _, v) in stats.items())]
        for name, x in values:
            if x is not None:
                acc = d["pairs"].setdefault(name, [0, 0.0, 0.0, 0.0, 0.0, 0.0])  # n, Σx, Σy, Σx², Σy², Σxy
                for i, v in enumerate((1, x, score, x * x, score * score, x * score)):
                    acc[i] += v
        if change is not None and len(d["points"]) < self.max_points:
            d["points"].append({"call_sid": r.get("call_sid", ""), "valence_change": round(change, 3),
                                "peak_anger": peak, "csat": int(score)})
        stayed_angry = peak is not None and peak >= ANGRY_PEAK and (r.get("emotion") == "angry" or
                                                                    (last is not None and last < -0.3))
        improved = change is not None and change > WORSE_BY and (peak is None or peak < ANGRY_PEAK)
        why = ("high score after a call that stayed angry" if score >= 4 and stayed_angry else
               "low score after a call that improved and was never angry" if score <= 2 and improved else "")
        if why and len(d["disagree"]) < self.max_listed:
            d["disagree"].append({"call_sid": r.get("call_sid", ""), "csat": int(score), "why": why,
                                  "valence_change": None if change is None else round(change, 3),
                                  "peak_anger": peak})

    def merge(self, other: Tally | dict[str, Any]) -> Tally:
        """Add another tally (or its ``to_dict``) of calls that came after this one's; return self."""
        src = other.d if isinstance(other, Tally) else other
        for key, value in src.items():
            if key == "points":
                self.d[key] = (self.d[key] + value[: max(0, self.max_points - len(self.d[key]))])
            elif key == "disagree":
                self.d[key] = (self.d[key] + value[: max(0, self.max_listed - len(self.d[key]))])
            else:
                self.d[key] = _sum(self.d.get(key), value)
        return self

    def lists_full(self) -> bool:
        """Return whether the scatter points and the disagreements listed are both at their limits."""
        return len(self.d["points"]) >= self.max_points and len(self.d["disagree"]) >= self.max_listed

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready sums."""
        return self.d

    @property
    def calls(self) -> int:
        """Return how many calls were counted."""
        return int(self.d["n"])

    def analytics(self, queues: list[str]) -> dict[str, Any]:
        """Return the routing figures (calls per queue, emotions, escalation, priority, wait, evolution)."""
        return TallyFigures(self.d).analytics(queues)

    def insights(self, queues: list[str]) -> dict[str, Any]:
        """Return phases, topics, escalation, opt-outs and CSAT (repeat callers: ``repeat_figures``)."""
        return TallyFigures(self.d).insights(queues)


class TallyFigures:
    """What a tally's sums say: the figures the analytics API, its CSV export and the dashboards show."""

    def __init__(self, d: dict[str, Any]) -> None:
        """Read the sums ``d`` (a :class:`Tally`'s ``to_dict``); nothing is changed."""
        self.d = d

    def analytics(self, queues: list[str]) -> dict[str, Any]:
        """Return the routing figures (calls per queue, emotions, escalation, priority, wait, evolution)."""
        d, n = self.d, self.d["n"]
        per_queue = d["queue"]
        return {
            "calls": n,
            "calls_per_queue": {q: per_queue.get(q, 0) for q in [*queues, "undecided"]
                                if per_queue.get(q, 0) or q in queues},
            # the caller's language as identified ("unidentified": detection off, or never sure enough)
            "calls_per_language": dict(sorted(d.get("language", {}).items(), key=lambda kv: (-kv[1], kv[0]))),
            # callers asked at the language check, per language they were taken for: no key (kept), English
            # keyed, another served language keyed (switched); English and switched are the identifier's mistakes
            "language_checks": {lang: {k: checks.get(k, 0) for k in CHECK_OUTCOMES} for lang, checks in sorted(
                d.get("checks", {}).items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))},
            "emotion_by_queue": {q: dict(c) for q, c in d["emo_queue"].items()},
            "emotion_by_hour": {h: dict(d["emo_hour"][h]) for h in sorted(d["emo_hour"])},
            "share_escalated": round(d["escalated"] / n, 3) if n else 0.0,
            "average_priority": _mean_of(d["priority"], 2),
            "average_wait_s": _mean_of(d["wait"], 2),
            "emotion_evolution": {k: d["evolution"].get(k, 0) for k in ("improved", "unchanged", "worsened")},
        }

    def insights(self, queues: list[str]) -> dict[str, Any]:
        """Return phases, topics, escalation, opt-outs and CSAT (repeat callers: ``repeat_figures``)."""
        n = self.d["n"]
        return {"phases": self._phase_figures(queues), "topics": self._topic_figures(),
                "escalation": self._escalation_figures(),
                "opt_outs": {"calls": self.d["opted"], "share": round(self.d["opted"] / n, 3) if n else 0.0},
                "csat": self._csat_figures(), "agents": self._agent_figures()}

    def _agent_figures(self) -> dict[str, dict[str, Any]]:
        """Return per agent, busiest first, how callers fared with them.

        Calls taken, the caller's mean P(angry) and valence in the agent phase, how often the
        caller's valence rose (or fell) by more than WORSE_BY from the phase before, and CSAT.
        """
        out = {}
        for agent, a in sorted(self.d["agents"].items(), key=lambda kv: (-kv[1]["calls"], kv[0])):
            out[agent] = {"calls": a["calls"], "anger_with_agent": _mean_of(a["anger"], 3),
                          "valence_with_agent": _mean_of(a["valence"], 3), "compared": a["compared"],
                          "improved": a["improved"], "worsened": a["worsened"],
                          "share_improved": round(a["improved"] / a["compared"], 3) if a["compared"] else None,
                          "csat_mean": _mean_of(a["csat"], 2), "csat_answered": int(a["csat"][0])}
        return out

    def _phase_figures(self, queues: list[str]) -> dict[str, Any]:
        d = self.d

        def table(scope: str) -> dict[str, dict[str, Any]]:
            got = d["phase"].get(scope, {})
            return {p: {"calls": int(got[p][0]), "anger": round(got[p][1] / got[p][0], 3),
                        "valence": round(got[p][2] / got[p][0], 3)} for p in PHASES if p in got}

        worse = d["worse"]
        worsened = {k: {"calls": n, "worsened": worse.get(k, 0), "share": round(worse.get(k, 0) / n, 3)}
                    for k, n in d["steps"].items()}
        named = [(v["share"], k) for k, v in worsened.items() if v["calls"] >= MIN_CALLS and v["worsened"]]
        worst = max(named) if named else None
        return {
            "order": list(PHASES),
            "all": table("all"),
            "per_queue": {q: table(q) for q in queues if q in d["phase"]},
            "worsened": dict(sorted(worsened.items(), key=lambda kv: [PHASES.index(p) for p in kv[0].split(">")])),
            "hurts_most": ({"from": worst[1].split(">")[0], "to": worst[1].split(">")[1], "share": worst[0],
                            "calls": worsened[worst[1]]["calls"]} if worst else None),
        }

    def _topic_figures(self) -> dict[str, Any]:
        d = self.d
        return {
            "totals": dict(Counter(d["topic"]).most_common()),
            "by_hour": {k: dict(d["topic_hour"][k]) for k in sorted(d["topic_hour"])},
            "by_day": {k: dict(d["topic_day"][k]) for k in sorted(d["topic_day"])},
            "by_queue": {k: dict(v) for k, v in d["topic_queue"].items()},
            "emotion": {k: dict(v) for k, v in d["topic_emotion"].items()},
            "angry_share": {t: round(angry / calls, 3) for t, (calls, angry) in d["topic_anger"].items()},
        }

    def _escalation_figures(self) -> dict[str, Any]:
        d, n = self.d, self.d["n"]
        return {
            "by_day": {day: {k: d["esc_day"][day].get(k, 0) for k in ("calls", *ESCALATIONS, "any")}
                       for day in sorted(d["esc_day"])},
            "share": {k: round(d["esc"].get(k, 0) / n, 3) if n else 0.0 for k in ESCALATIONS},
            "share_any": round(d["esc"].get("any", 0) / n, 3) if n else 0.0,
        }

    def _csat_figures(self) -> dict[str, Any]:
        d = self.d
        answered = sum(d["csat"].values())
        return {
            "answered": answered,
            "mean": round(d["csat_sum"] / answered, 3) if answered else None,
            "distribution": {str(k): d["csat"].get(str(k), 0) for k in range(1, 6)},
            "correlation": {k: {"r": _pearson(v), "calls": int(v[0])} for k, v in d["pairs"].items()},
            "points": d["points"],
            "disagreements": d["disagree"],
        }


def repeat_index(history: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Return each caller hash's call starts, sorted, from (caller_hash, started_at) rows."""
    starts: dict[str, list[float]] = defaultdict(list)
    for h in history:
        ts = _f(h, "started_at")
        if h.get("caller_hash") and ts is not None:
            starts[h["caller_hash"]].append(ts)
    for v in starts.values():
        v.sort()
    return starts


def mark_repeats(rows: list[dict[str, str]], index: dict[str, list[float]], days: float) -> tuple[int, set[str]]:
    """Mark (``repeat_caller``) each call whose caller called within ``days`` before; return (repeats, callers)."""
    repeats, callers = 0, set()
    for r in rows:
        ts, who = _f(r, "started_at"), r.get("caller_hash", "")
        if ts is None or not who:
            continue
        callers.add(who)
        earlier = index.get(who, [])
        i = bisect_left(earlier, ts)  # the calls before this one; the latest must be within ``days``
        if i and earlier[i - 1] >= ts - days * 86400:
            repeats += 1
            r["repeat_caller"] = "1"  # the CSV export shows it
    return repeats, callers


def repeat_figures(rows: list[dict[str, str]], history: list[dict[str, Any]], days: float) -> dict[str, Any]:
    """Return how many calls in ``rows`` come from a caller (salted hash) who called within ``days`` before.

    ``history`` holds (caller_hash, started_at) of calls from ``days`` before the period to its end.
    """
    repeats, callers = mark_repeats(rows, repeat_index(history), days)
    hashed = sum(1 for r in rows if r.get("caller_hash"))
    return {"days": days, "repeat_calls": repeats, "share": round(repeats / hashed, 3) if hashed else 0.0,
            "callers": len(callers)}


def _pearson(sums: list[float]) -> float | None:
    """Return Pearson's r from (n, Σx, Σy, Σx², Σy², Σxy); None under 3 pairs or without spread."""
    n, sx, sy, sxx, syy, sxy = sums
    if n < 3:
        return None
    vx, vy = sxx - sx * sx / n, syy - sy * sy / n
    if vx <= 1e-9 * max(1.0, sxx) or vy <= 1e-9 * max(1.0, syy):
        return None
    return round(max(-1.0, min(1.0, (sxy - sx * sy / n) / math.sqrt(vx * vy))), 3)


def _inc(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _acc(acc: list[float], value: float | None) -> None:
    if value is not None:
        acc[0] += 1
        acc[1] += value


def _mean_of(acc: list[float], digits: int) -> float | None:
    return round(acc[1] / acc[0], digits) if acc[0] else None


def _sum(a: Any, b: Any) -> Any:
    """Add two tallies' values: numbers, equal-length lists of numbers, or dicts of either."""
    if a is None:
        return json.loads(json.dumps(b))  # a copy: later merges never change the source
    if isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _sum(out.get(k), v)
        return out
    if isinstance(b, list):
        return [x + y for x, y in zip(a, b, strict=True)]
    return a + b


def insights_of(rows: list[dict[str, str]], queues: list[str], *, key_intents: dict[str, str],
                history: list[dict[str, str]] | None = None, repeat_days: float = 7.0) -> dict[str, Any]:
    """Return every figure above for the calls in ``rows``."""
    return insights_from(Tally.of(rows, key_intents), queues,
                         repeat_figures(rows, history if history is not None else rows, repeat_days))


def insights_from(tally: Tally, queues: list[str], repeats: dict[str, Any]) -> dict[str, Any]:
    """Return the insight figures of a tally and the period's repeat callers, in the API's order."""
    figures = tally.insights(queues)
    return {"phases": figures["phases"], "topics": figures["topics"], "escalation": figures["escalation"],
            "repeat_callers": repeats, "opt_outs": figures["opt_outs"], "csat": figures["csat"],
            "agents": figures["agents"]}
