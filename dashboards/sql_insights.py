"""The analytics page's figures and CSV export as SQL on the history store (router.history).

Each query fills part of a :class:`dashboards.insights.Tally`'s sums (calls per queue, emotions
by hour, phase means, topics, escalation, CSAT against the trajectory, agents), so the figures
are rendered by the same code as when they are counted call by call in Python, and a test holds
both to the same answer. Every figure is an aggregate over the columns that
``router.history`` keeps for it: no JSON is parsed, and ten million calls are a few scans.
Blocking functions: call them off the event loop.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from dashboards.insights import (
    ANGRY_PEAK,
    ESCALATIONS,
    UNIDENTIFIED,
    WORSE_BY,
    Tally,
    check_outcome,
    hour_and_day,
    insights_from,
    mark_repeats,
    repeat_index,
)
from router.history import HistoryStore
from router.phases import PHASES

IN_PERIOD = "started_at >= ? AND started_at <= ?"
QUEUE = "COALESCE(NULLIF(queue, ''), 'undecided')"
CSAT_OK = "csat BETWEEN 1 AND 5"
CHANGE = "(last_valence - first_valence)"
MAX_POINTS, MAX_LISTED = 2000, 50
DAY = 86400


def _n(value: Any) -> Any:
    """Return a number as Python's int or float (PostgreSQL's sums of integers come back as Decimal)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return 0 if value is None else value


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _present(phase: str) -> str:
    return f"{phase}_readings IS NOT NULL"


def _steps() -> list[tuple[str, str, str]]:
    """Return each phase change a call can show, (a>b, the SQL that it happened, the SQL that it worsened)."""
    out = []
    for i, a in enumerate(PHASES):
        for j in range(i + 1, len(PHASES)):
            b, between = PHASES[j], PHASES[i + 1: j]
            seen = " AND ".join([_present(a), _present(b), *(f"{p}_readings IS NULL" for p in between)])
            out.append((f"{a}>{b}", seen, f"{seen} AND {b}_valence < {a}_valence - {WORSE_BY}"))
    return out


PAIRS = {"valence_change": CHANGE, "end_valence": "last_valence", "peak_anger": "peak_anger",
         **{f"{p}_valence": f"{p}_valence" for p in PHASES}}


def _main_sql() -> tuple[str, list[str]]:
    """Return the one-row query of the period's sums, and the names of its columns."""
    wait = "picked_at - COALESCE(enqueued_at, decided_at)"
    cols = {
        "n": "count(*)", "escalated": _count("escalated"), "priority_n": "count(priority)",
        "priority_s": "SUM(priority)", "wait_n": f"count({wait})", "wait_s": f"SUM({wait})",
        "improved": _count(f"{CHANGE} > {WORSE_BY}"), "worsened": _count(f"{CHANGE} < -{WORSE_BY}"),
        "unchanged": _count(f"{CHANGE} BETWEEN -{WORSE_BY} AND {WORSE_BY}"), "opted": _count("opted_out"),
        **{f"esc_{k}": _count(k) for k in ESCALATIONS}, "esc_any": _count(" OR ".join(ESCALATIONS)),
        **{f"csat_{k}": _count(f"csat = {k}") for k in range(1, 6)},
        "csat_sum": f"SUM(CASE WHEN {CSAT_OK} THEN csat END)",
        "synthetic": _count("synthetic"),
    }
    for name, x in PAIRS.items():
        ok = f"{CSAT_OK} AND {x} IS NOT NULL"
        for part, expr in (("n", "1"), ("sx", x), ("sy", "csat"), ("sxx", f"{x} * {x}"), ("syy", "csat * csat"),
                           ("sxy", f"{x} * csat")):
            cols[f"pair_{name}_{part}"] = f"SUM(CASE WHEN {ok} THEN {expr} END)"
    for step, seen, worse in _steps():
        cols[f"step_{step}"], cols[f"worse_{step}"] = _count(seen), _count(worse)
    select = ", ".join(f"{expr} AS {name.replace('>', '_to_')}" for name, expr in cols.items())
    return f"SELECT {select} FROM calls WHERE {IN_PERIOD}", list(cols)  # noqa: S608 - built from fixed names


MAIN_SQL, MAIN_COLUMNS = _main_sql()


def _day(day: int) -> str:
    return hour_and_day(day * 24)[1]


class SqlTally:
    """Fills a Tally's sums for the calls that started in [lo, hi] from the history store."""

    def __init__(self, history: HistoryStore, lo: float, hi: float, key_intents: dict[str, str], *,
                 end_open: bool = False) -> None:
        """Read from ``history`` the calls that started in [lo, hi] (``end_open``: [lo, hi))."""
        self.history, self.period, self.end_open = history, [lo, hi], end_open
        self.tally = Tally(key_intents)

    def q(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query on the period (its first two placeholders) and return its rows as Python numbers."""
        if self.end_open:
            sql = sql.replace(IN_PERIOD, IN_PERIOD.replace("<=", "<"))
        return [tuple(_n(v) for v in row) for row in self.history.query(sql, self.period + (params or []))]

    def fill(self) -> Tally:
        """Run every query and return the tally."""
        if self.end_open and self.period[0] >= self.period[1]:
            return self.tally  # an empty stretch: nothing to ask
        self._main()
        self._queues_and_emotions()
        self._days()
        self._phases()
        self._topics()
        self._agents()
        self._csat_lists()
        return self.tally

    def _main(self) -> None:
        d = self.tally.d
        m = dict(zip(MAIN_COLUMNS, self.q(MAIN_SQL)[0], strict=True))
        d["n"], d["escalated"], d["opted"] = m["n"], m["escalated"], m["opted"]
        d["priority"], d["wait"] = [m["priority_n"], m["priority_s"]], [m["wait_n"], m["wait_s"]]
        d["evolution"] = {k: m[k] for k in ("improved", "unchanged", "worsened") if m[k]}
        d["esc"] = {k: m[f"esc_{k}"] for k in (*ESCALATIONS, "any") if m[f"esc_{k}"]}
        d["csat"] = {str(k): m[f"csat_{k}"] for k in range(1, 6) if m[f"csat_{k}"]}
        d["csat_sum"] = float(m["csat_sum"])
        for name in PAIRS:
            sums = [float(m[f"pair_{name}_{part}"]) for part in ("n", "sx", "sy", "sxx", "syy", "sxy")]
            if sums[0]:
                d["pairs"][name] = sums
        for step, _, _ in _steps():
            if m[f"step_{step}"]:
                d["steps"][step] = m[f"step_{step}"]
            if m[f"worse_{step}"]:
                d["worse"][step] = m[f"worse_{step}"]
        d["synthetic"] = m["synthetic"]

    def _queues_and_emotions(self) -> None:
        d = self.tally.d
        for language, n in self.q(f"SELECT COALESCE(language, '{UNIDENTIFIED}'), count(*) FROM calls "  # noqa: S608
                                  f"WHERE {IN_PERIOD} GROUP BY 1"):
            d["language"][language] = d["language"].get(language, 0) + n
        for language, answer, n in self.q("SELECT language_checked, language_check, count(*) FROM calls "  # noqa: S608
                                          f"WHERE {IN_PERIOD} AND language_checked IS NOT NULL GROUP BY 1, 2"):
            checks = d["checks"].setdefault(language, {})
            outcome = check_outcome(answer or "")
            checks[outcome] = checks.get(outcome, 0) + n
        for queue, emotion, n in self.q(f"SELECT {QUEUE}, first_emotion, count(*) FROM calls "  # noqa: S608
                                        f"WHERE {IN_PERIOD} GROUP BY 1, 2"):
            d["queue"][queue] = d["queue"].get(queue, 0) + n
            if emotion:
                d["emo_queue"].setdefault(queue, {})[emotion] = n
        for hour, emotion, n in self.q("SELECT CAST(floor(started_at / 3600) AS BIGINT), first_emotion, count(*) "
                                       f"FROM calls WHERE {IN_PERIOD} AND first_emotion <> '' GROUP BY 1, 2"):  # noqa: S608
            d["emo_hour"].setdefault(hour_and_day(hour)[0], {})[emotion] = n

    def _days(self) -> None:
        flags = ", ".join(_count(k) for k in (*ESCALATIONS, " OR ".join(ESCALATIONS)))
        for day, calls, *counts in self.q(f"SELECT CAST(floor(started_at / 86400) AS BIGINT), count(*), {flags} "  # noqa: S608
                                          f"FROM calls WHERE {IN_PERIOD} GROUP BY 1"):
            got = dict(zip((*ESCALATIONS, "any"), counts, strict=True))
            self.tally.d["esc_day"][_day(day)] = {"calls": calls, **{k: v for k, v in got.items() if v}}

    def _phases(self) -> None:
        sums = ", ".join(f"count({p}_readings), SUM({p}_anger), SUM({p}_valence)" for p in PHASES)
        phase = self.tally.d["phase"]
        for queue, *values in self.q(f"SELECT {QUEUE}, {sums} FROM calls WHERE {IN_PERIOD} GROUP BY 1"):  # noqa: S608
            for i, p in enumerate(PHASES):
                n, anger, valence = values[3 * i: 3 * i + 3]
                if n:
                    for scope in ("all", queue):
                        acc = phase.setdefault(scope, {}).setdefault(p, [0, 0.0, 0.0])
                        acc[0] += n
                        acc[1] += float(anger)
                        acc[2] += float(valence)

    def _topics(self) -> None:
        d = self.tally.d
        for topic, hour, n in self.q("SELECT topic, CAST(floor(started_at / 3600) AS BIGINT), count(*) "
                                     f"FROM call_topics WHERE {IN_PERIOD} GROUP BY 1, 2"):  # noqa: S608
            name, day = hour_and_day(hour)
            d["topic"][topic] = d["topic"].get(topic, 0) + n
            d["topic_hour"].setdefault(name, {})[topic] = n
            by_day = d["topic_day"].setdefault(day, {})
            by_day[topic] = by_day.get(topic, 0) + n
        angry_sql = _count(f"peak_anger >= {ANGRY_PEAK}")
        for topic, queue, emotion, n, peaks, angry in self.q(
                f"SELECT topic, queue, first_emotion, count(*), count(peak_anger), {angry_sql} "  # noqa: S608
                f"FROM call_topics WHERE {IN_PERIOD} GROUP BY 1, 2, 3"):
            by_queue = d["topic_queue"].setdefault(queue, {})
            by_queue[topic] = by_queue.get(topic, 0) + n
            if emotion:
                by_emotion = d["topic_emotion"].setdefault(topic, {})
                by_emotion[emotion] = by_emotion.get(emotion, 0) + n
            if peaks:
                acc = d["topic_anger"].setdefault(topic, [0, 0])
                acc[0] += peaks
                acc[1] += angry
        # "topic" in the order Python counts it: totals are shown most common first either way
        d["topic"] = dict(sorted(d["topic"].items(), key=lambda kv: (-kv[1], kv[0])))

    def _agents(self) -> None:
        before = "COALESCE(" + ", ".join(f"{p}_valence" for p in reversed(PHASES[: PHASES.index("agent")])) + ")"
        change = f"agent_valence - {before}"
        rows = self.q(f"SELECT agent, count(*), count(agent_readings), SUM(agent_anger), SUM(agent_valence), "  # noqa: S608
                      f"count({change}), {_count(f'{change} > {WORSE_BY}')}, {_count(f'{change} < -{WORSE_BY}')}, "
                      f"{_count(CSAT_OK)}, SUM(CASE WHEN {CSAT_OK} THEN csat END) "
                      f"FROM calls WHERE {IN_PERIOD} AND agent <> '' GROUP BY 1")
        for agent, calls, n, anger, valence, compared, improved, worsened, csat_n, csat_s in rows:
            self.tally.d["agents"][agent] = {
                "calls": calls, "anger": [n, float(anger or 0)], "valence": [n, float(valence or 0)],
                "compared": compared, "improved": improved, "worsened": worsened, "csat": [csat_n, float(csat_s or 0)]}

    def _csat_lists(self) -> None:
        d = self.tally.d
        for sid, change, peak, csat in self.q(
                f"SELECT call_sid, {CHANGE}, peak_anger, csat FROM calls WHERE {IN_PERIOD} AND {CSAT_OK} "  # noqa: S608
                f"AND {CHANGE} IS NOT NULL ORDER BY started_at, call_sid LIMIT {MAX_POINTS}"):
            d["points"].append({"call_sid": sid, "valence_change": round(change, 3), "peak_anger": peak,
                                "csat": int(csat)})
        stayed_angry = f"peak_anger >= {ANGRY_PEAK} AND (emotion = 'angry' OR last_valence < -0.3)"
        improved = f"{CHANGE} > {WORSE_BY} AND (peak_anger IS NULL OR peak_anger < {ANGRY_PEAK})"
        for sid, csat, change, peak, high in self.q(
                f"SELECT call_sid, csat, {CHANGE}, peak_anger, csat >= 4 FROM calls WHERE {IN_PERIOD} AND {CSAT_OK} "  # noqa: S608
                f"AND ((csat >= 4 AND {stayed_angry}) OR (csat <= 2 AND {improved})) "
                f"ORDER BY started_at, call_sid LIMIT {MAX_LISTED}"):
            why = ("high score after a call that stayed angry" if high else
                   "low score after a call that improved and was never angry")
            d["disagree"].append({"call_sid": sid, "csat": int(csat), "why": why,
                                  "valence_change": None if change is None else round(change, 3), "peak_anger": peak})


def repeat_callers(history: HistoryStore, lo: float, hi: float, days: float) -> dict[str, Any]:
    """Return the repeat-caller figures (as dashboards.insights.repeat_figures) for calls that started in [lo, hi].

    Each stored call knows its caller's previous call (``prev_started_at``): a call is a repeat when
    that is within ``days``, and a caller's first call in the period is the one whose previous call
    lies before it, so one scan counts both.
    """
    calls, callers, repeats = (_n(v) for v in history.query(
        f"SELECT count(*), {_count('prev_started_at IS NULL OR prev_started_at < ?')}, "  # noqa: S608
        f"{_count('prev_started_at >= started_at - ?')} FROM calls WHERE {IN_PERIOD} AND caller_hash <> ''",
        [lo, days * 86400, lo, hi])[0])
    return {"days": days, "repeat_calls": repeats, "share": round(repeats / calls, 3) if calls else 0.0,
            "callers": callers}


# what a stored day's sums count: bump with a change to the queries or the Tally
DAY_VERSION = f"tally{Tally.VERSION}-sql1"


def _tally_of_days(history: HistoryStore, first: int, last: int, key_intents: dict[str, str]) -> Tally:
    """Return the merged tally of the whole UTC days ``first``..``last``, each from its stored sums when current.

    A day's sums are stored with the number of its calls and their latest ``archived_at``; they are
    used only while the day's calls still show both (a call written, rewritten, erased or purged
    changes one), so nothing has to invalidate them and no process can use another's stale sums.
    """
    tally = Tally(key_intents)
    signature = {day: (n, last_at) for day, n, last_at in (tuple(_n(v) for v in row) for row in history.query(
        "SELECT CAST(floor(started_at / 86400) AS BIGINT), count(*), max(archived_at) FROM calls "
        "WHERE started_at >= ? AND started_at < ? GROUP BY 1", [first * DAY, (last + 1) * DAY]))}
    stored = {day: (n, last_at, raw) for day, n, last_at, raw in history.query(
        "SELECT day, calls, last_archived, tally FROM analytics_days WHERE version = ? AND day >= ? AND day <= ?",
        [DAY_VERSION, first, last])}
    for day in sorted(signature):
        n, last_at = signature[day]
        kept = stored.get(day)
        if kept is not None and kept[0] == n and kept[1] == last_at:
            tally.merge(json.loads(kept[2]))
            continue
        sums = SqlTally(history, day * DAY, (day + 1) * DAY, key_intents, end_open=True).fill().to_dict()
        history.execute("INSERT INTO analytics_days (day, version, calls, last_archived, tally) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (day, version) DO UPDATE SET calls = excluded.calls, "
                        "last_archived = excluded.last_archived, tally = excluded.tally",
                        [day, DAY_VERSION, n, last_at, json.dumps(sums)])
        tally.merge(sums)
    return tally


def warm_days(history: HistoryStore, *, days: int, key_intents: dict[str, str],
              stop: Callable[[], bool] = lambda: False, now: float | None = None) -> int:
    """Count and store the sums of each of the last ``days`` whole UTC days that lack current ones.

    Run in the background (emoroute.services, hourly), so that a supervisor's first request for a
    month merges stored days instead of counting a month of calls (11 s over 10 million calls on
    DuckDB, 35 s over 1 million on PostgreSQL, two cores). ``stop`` is asked between two days.
    Return the number of days looked at.
    """
    today = math.floor((time.time() if now is None else now) / DAY)
    looked = 0
    for day in range(today - days, today):
        if stop():
            break
        _tally_of_days(history, day, day, key_intents)
        looked += 1
    return looked


def period_figures(history: HistoryStore, lo: float, hi: float, *, queues: list[str], key_intents: dict[str, str],
                   repeat_days: float) -> dict[str, Any]:
    """Return the analytics endpoint's figures for the calls that started in [lo, hi], from the history store.

    The whole UTC days inside the period are merged from their stored sums (counted once, then kept
    while their calls are unchanged); the parts of days at its ends are counted from their calls.
    """
    first, last = math.ceil(lo / DAY), math.floor(hi / DAY) - 1  # the whole days [d, d + 1) inside [lo, hi]
    if last < first:
        tally = SqlTally(history, lo, hi, key_intents).fill()
    else:
        tally = SqlTally(history, lo, first * DAY, key_intents, end_open=True).fill()
        tally.merge(_tally_of_days(history, first, last, key_intents))
        tally.merge(SqlTally(history, (last + 1) * DAY, hi, key_intents).fill())
    repeats = repeat_callers(history, lo, hi, repeat_days)
    return {"start": lo, "end": hi, "source": "history", "synthetic_calls": tally.d.get("synthetic", 0),
            **tally.analytics(queues), **insights_from(tally, queues, repeats)}


def csv_batches(history: HistoryStore, lo: float, hi: float, *, repeat_days: float,
                batch: int = 5000) -> Iterator[list[dict[str, str]]]:
    """Yield the stored calls that started in [lo, hi], oldest first, ``batch`` at a time, as summaries.

    Each summary carries ``repeat_caller`` ("1") when its caller called within ``repeat_days``
    before. Every batch is a query of its own (keyset paging), so the store is never held between two.
    """
    after: tuple[float, str] = (lo, "")
    window = repeat_days * 86400
    while True:
        rows = history.query(
            "SELECT call_sid, summary, started_at, caller_hash FROM calls WHERE started_at >= ? AND started_at <= ? "
            "AND (started_at > ? OR call_sid > ?) ORDER BY started_at, call_sid LIMIT ?",
            [after[0], hi, after[0], after[1], batch])
        if not rows:
            return
        calls = [{**{k: str(v) for k, v in json.loads(summary or "{}").items()}, "call_sid": sid,
                  "caller_hash": who or ""} for sid, summary, _, who in rows]
        hashes = sorted({c["caller_hash"] for c in calls if c["caller_hash"]})
        if hashes:
            marks = ", ".join("?" for _ in hashes)
            earlier = history.query(f"SELECT caller_hash, started_at FROM calls WHERE caller_hash IN ({marks}) "  # noqa: S608
                                    "AND started_at >= ? AND started_at <= ?",
                                    [*hashes, float(rows[0][2]) - window, float(rows[-1][2])])
            index = repeat_index([{"caller_hash": h, "started_at": str(t)} for h, t in earlier])
            mark_repeats(calls, index, repeat_days)
        yield calls
        after = (float(rows[-1][2]), rows[-1][0])
        if len(rows) < batch:
            return
