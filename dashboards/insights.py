"""What managers buy emotion analytics for: phases, topics, escalation, repeat callers, opt-outs, CSAT.

Pure functions of stored call summaries (router.store writes the fields; router.phases the
per-phase means), so they run the same on the API, the CSV export and the benchmark.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter, defaultdict
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from router.phases import PHASES, parse_phase_stats

Stats = dict[str, tuple[int, float, float]]  # phase -> (readings, mean P(angry), mean valence)
INSIGHT_FIELDS = ("call_sid", "queue", "started_at", "first_valence", "last_valence", "first_emotion", "emotion",
                  "intents", "keypad", "phase_stats", "peak_anger", "asked_manager", "anger_rose", "rerouted",
                  "caller_hash", "opted_out", "csat")
WORSE_BY = 0.2  # a mean valence drop larger than this from one phase to the next counts as worsened
MIN_CALLS = 3  # a phase change seen in fewer calls is not named as the one that hurts most
ANGRY_PEAK = 0.6  # a call whose P(angry) reached this counts as having been angry


def _f(row: dict[str, str], key: str) -> float | None:
    try:
        return float(row[key]) if row.get(key) not in (None, "") else None
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def _hour_and_day(hour: int) -> tuple[str, str]:
    moment = datetime.fromtimestamp(hour * 3600, UTC)
    return moment.strftime("%Y-%m-%d %H:00"), moment.strftime("%Y-%m-%d")


def _buckets(ts: float) -> tuple[str, str]:
    """Return the UTC hour ("YYYY-MM-DD HH:00") and day of a timestamp (cached per hour: 100k calls, few hours)."""
    return _hour_and_day(int(ts // 3600))


def _stats(row: dict[str, str], cache: dict[int, Stats]) -> Stats:
    key = id(row)
    if key not in cache:
        cache[key] = parse_phase_stats(row.get("phase_stats"))
    return cache[key]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def topics_of(row: dict[str, str], key_intents: dict[str, str]) -> list[str]:
    """Return the call's topics: the intents heard, and the one its keypad key states."""
    found = [i for i in (row.get("intents") or "").split(",") if i]
    keyed = key_intents.get(row.get("keypad", ""), "")
    if keyed and keyed not in found:
        found.append(keyed)
    return found


def phase_figures(rows: list[dict[str, str]], queues: list[str],
                  parsed: dict[int, Stats] | None = None) -> dict[str, Any]:
    """Return mean P(angry) and valence per phase (all calls, per queue) and worsened shares.

    A call worsened from one phase to the next when its mean valence dropped by more than
    WORSE_BY; the change that worsens most often (in at least MIN_CALLS calls) is named.
    """
    parsed = {} if parsed is None else parsed
    sums: dict[str, dict[str, list[float]]] = defaultdict(dict)  # scope -> phase -> [calls, anger, valence]
    steps: Counter[str] = Counter()
    worse: Counter[str] = Counter()
    for r in rows:
        stats = _stats(r, parsed)
        if not stats:
            continue
        queue = r.get("queue") or "undecided"
        for phase, (_, anger, valence) in stats.items():
            for scope in ("all", queue):
                acc = sums[scope].setdefault(phase, [0.0, 0.0, 0.0])
                acc[0] += 1
                acc[1] += anger
                acc[2] += valence
        seen = [p for p in PHASES if p in stats]
        for a, b in zip(seen, seen[1:], strict=False):
            steps[f"{a}>{b}"] += 1
            if stats[b][2] < stats[a][2] - WORSE_BY:
                worse[f"{a}>{b}"] += 1

    def table(scope: str) -> dict[str, dict[str, Any]]:
        got = sums.get(scope, {})
        return {p: {"calls": int(got[p][0]), "anger": round(got[p][1] / got[p][0], 3),
                    "valence": round(got[p][2] / got[p][0], 3)} for p in PHASES if p in got}

    worsened = {k: {"calls": n, "worsened": worse[k], "share": round(worse[k] / n, 3)} for k, n in steps.items()}
    named = [(v["share"], k) for k, v in worsened.items() if v["calls"] >= MIN_CALLS and v["worsened"]]
    worst = max(named) if named else None
    return {
        "order": list(PHASES),
        "all": table("all"),
        "per_queue": {q: table(q) for q in queues if q in sums},
        "worsened": dict(sorted(worsened.items(), key=lambda kv: [PHASES.index(p) for p in kv[0].split(">")])),
        "hurts_most": ({"from": worst[1].split(">")[0], "to": worst[1].split(">")[1], "share": worst[0],
                        "calls": worsened[worst[1]]["calls"]} if worst else None),
    }


def topic_figures(rows: list[dict[str, str]], key_intents: dict[str, str]) -> dict[str, Any]:
    """Return topic frequencies per hour, day and queue, and the emotion mix and anger share per topic."""
    by_hour: dict[str, Counter[str]] = defaultdict(Counter)
    by_day: dict[str, Counter[str]] = defaultdict(Counter)
    by_queue: dict[str, Counter[str]] = defaultdict(Counter)
    emotion: dict[str, Counter[str]] = defaultdict(Counter)
    anger: dict[str, list[float]] = defaultdict(list)
    totals: Counter[str] = Counter()
    for r in rows:
        topics = topics_of(r, key_intents) or ["(none)"]
        ts = _f(r, "started_at")
        hour, day = _buckets(ts) if ts is not None else ("", "")
        label, peak = r.get("first_emotion", ""), _f(r, "peak_anger")
        for t in topics:
            totals[t] += 1
            if ts is not None:
                by_hour[hour][t] += 1
                by_day[day][t] += 1
            by_queue[r.get("queue") or "undecided"][t] += 1
            if label:
                emotion[t][label] += 1
            if peak is not None:
                anger[t].append(peak)
    return {
        "totals": dict(totals.most_common()),
        "by_hour": {k: dict(by_hour[k]) for k in sorted(by_hour)},
        "by_day": {k: dict(by_day[k]) for k in sorted(by_day)},
        "by_queue": {k: dict(v) for k, v in by_queue.items()},
        "emotion": {k: dict(v) for k, v in emotion.items()},
        "angry_share": {t: round(sum(1 for p in v if p >= ANGRY_PEAK) / len(v), 3) for t, v in anger.items()},
    }


def escalation_figures(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Return, per day and overall, calls whose anger rose while waiting, re-routed, or asking for a manager."""
    kinds = ("anger_rose", "rerouted", "asked_manager")
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    overall: Counter[str] = Counter()
    for r in rows:
        flags = [k for k in kinds if r.get(k) == "1"]
        overall.update(flags)
        overall["any"] += bool(flags)
        ts = _f(r, "started_at")
        if ts is None:
            continue
        day = per_day[_buckets(ts)[1]]
        day["calls"] += 1
        day.update(flags)
        day["any"] += bool(flags)
    n = len(rows)
    return {
        "by_day": {d: {k: per_day[d][k] for k in ("calls", *kinds, "any")} for d in sorted(per_day)},
        "share": {k: round(overall[k] / n, 3) if n else 0.0 for k in kinds},
        "share_any": round(overall["any"] / n, 3) if n else 0.0,
    }


def repeat_figures(rows: list[dict[str, str]], history: list[dict[str, str]], days: float) -> dict[str, Any]:
    """Return how many calls in ``rows`` come from a caller (salted hash) who called within ``days`` before.

    ``history`` holds (caller_hash, started_at) of calls from ``days`` before the period to its end.
    """
    starts: dict[str, list[float]] = defaultdict(list)
    for h in history:
        ts = _f(h, "started_at")
        if h.get("caller_hash") and ts is not None:
            starts[h["caller_hash"]].append(ts)
    for v in starts.values():
        v.sort()
    repeats, callers = 0, set()
    for r in rows:
        ts, who = _f(r, "started_at"), r.get("caller_hash", "")
        if ts is None or not who:
            continue
        callers.add(who)
        earlier = starts.get(who, [])
        i = bisect_left(earlier, ts)  # the calls before this one; the latest must be within ``days``
        if i and earlier[i - 1] >= ts - days * 86400:
            repeats += 1
            r["repeat_caller"] = "1"  # the CSV export shows it
    hashed = sum(1 for r in rows if r.get("caller_hash"))
    return {"days": days, "repeat_calls": repeats, "share": round(repeats / hashed, 3) if hashed else 0.0,
            "callers": len(callers)}


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / math.sqrt(sxx * syy), 3)


def csat_figures(rows: list[dict[str, str]], *, max_points: int = 2000, max_listed: int = 50,
                 parsed: dict[int, Stats] | None = None) -> dict[str, Any]:
    """Return the post-call score against the trajectory: correlations, scatter points, disagreements.

    Listed as disagreeing: a high score (4-5) after a call that stayed angry, a low one (1-2) after
    a call whose valence improved and that was never angry.
    """
    scored = [r for r in rows if r.get("csat") in ("1", "2", "3", "4", "5")]
    pairs: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    points: list[dict[str, Any]] = []
    disagree: list[dict[str, Any]] = []
    for r in scored:
        score = float(r["csat"])
        first, last, peak = _f(r, "first_valence"), _f(r, "last_valence"), _f(r, "peak_anger")
        change = None if first is None or last is None else last - first
        for name, value in (("valence_change", change), ("end_valence", last), ("peak_anger", peak)):
            if value is not None:
                pairs[name][0].append(value)
                pairs[name][1].append(score)
        for phase, (_, _, valence) in _stats(r, {} if parsed is None else parsed).items():
            pairs[f"{phase}_valence"][0].append(valence)
            pairs[f"{phase}_valence"][1].append(score)
        if change is not None and len(points) < max_points:
            points.append({"call_sid": r.get("call_sid", ""), "valence_change": round(change, 3),
                           "peak_anger": peak, "csat": int(score)})
        stayed_angry = peak is not None and peak >= ANGRY_PEAK and (r.get("emotion") == "angry" or
                                                                    (last is not None and last < -0.3))
        improved = change is not None and change > WORSE_BY and (peak is None or peak < ANGRY_PEAK)
        why = ("high score after a call that stayed angry" if score >= 4 and stayed_angry else
               "low score after a call that improved and was never angry" if score <= 2 and improved else "")
        if why and len(disagree) < max_listed:
            disagree.append({"call_sid": r.get("call_sid", ""), "csat": int(score), "why": why,
                             "valence_change": None if change is None else round(change, 3), "peak_anger": peak})
    return {
        "answered": len(scored),
        "mean": _mean([float(r["csat"]) for r in scored]),
        "distribution": {str(k): sum(1 for r in scored if r["csat"] == str(k)) for k in range(1, 6)},
        "correlation": {k: {"r": _pearson(x, y), "calls": len(x)} for k, (x, y) in pairs.items()},
        "points": points,
        "disagreements": disagree,
    }


def insights_of(rows: list[dict[str, str]], queues: list[str], *, key_intents: dict[str, str],
                history: list[dict[str, str]] | None = None, repeat_days: float = 7.0) -> dict[str, Any]:
    """Return every figure above for the calls in ``rows``."""
    opted = sum(1 for r in rows if r.get("opted_out") == "1")
    parsed: dict[int, Stats] = {}  # each call's phase_stats, decoded once
    return {
        "phases": phase_figures(rows, queues, parsed),
        "topics": topic_figures(rows, key_intents),
        "escalation": escalation_figures(rows),
        "repeat_callers": repeat_figures(rows, history if history is not None else rows, repeat_days),
        "opt_outs": {"calls": opted, "share": round(opted / len(rows), 3) if rows else 0.0},
        "csat": csat_figures(rows, parsed=parsed),
    }
