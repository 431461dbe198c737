"""The analytics as SQL on the history store (issue #31) give the figures Python counts call by call.

Several hundred varied call summaries (phases in every combination, topics heard and keyed,
surveys, agents, repeat callers, opt-outs, calls without a decision) are written to DuckDB and to
a real PostgreSQL server; every figure of the analytics endpoint computed by SQL must equal the
one dashboards.insights.Tally counts from the same summaries, and the CSV export must list the
same calls with the same repeat-caller marks.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.insights import Tally, insights_from, repeat_figures
from dashboards.sql_insights import csv_batches, period_figures
from router.history import CallRecord, HistoryStore
from router.phases import PHASES

pytestmark = pytest.mark.timeout(300)
QUEUES = ["retention", "sales", "general"]
KEYS = {"1": "cancel", "3": "purchase"}
DAY = 86400.0
T0 = 1_780_000_000.0  # a Monday, 2026


@pytest.fixture(params=["duckdb", "postgresql"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryStore]:
    if request.param == "duckdb":
        store = HistoryStore(f"duckdb://{tmp_path / 'history.duckdb'}")
    else:
        store = request.getfixturevalue("postgres").empty_history()
    store.migrate()
    yield store
    store.close()


def summaries(n: int, seed: int = 7) -> list[dict[str, str]]:
    """``n`` varied call summaries over four days, as Redis holds them (strings; missing fields absent)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s: dict[str, str] = {"call_sid": f"CA{i:032x}", "started_at": repr(T0 + rng.uniform(0, 4 * DAY)),
                             "status": "ended"}
        if rng.random() < 0.9:
            s["queue"] = rng.choice(QUEUES)
            s["priority"] = str(rng.randint(1, 10))
            s["decided_at"] = repr(float(s["started_at"]) + rng.uniform(1, 5))
        if rng.random() < 0.85:
            s["first_emotion"] = rng.choice(["angry", "happy", "neutral", "sad"])
            s["emotion"] = rng.choice(["angry", "happy", "neutral", "sad"])
            s["first_valence"] = repr(round(rng.uniform(-1, 1), 3))
            s["last_valence"] = repr(round(rng.uniform(-1, 1), 3))
            s["peak_anger"] = repr(round(rng.random(), 3))
        stats = {p: [rng.randint(1, 5), round(rng.random(), 3), round(rng.uniform(-1, 1), 3)]
                 for p in PHASES if rng.random() < 0.5}
        if stats:
            s["phase_stats"] = json.dumps(stats)
        if rng.random() < 0.6:
            topics = ["cancel", "purchase", "complaint", "billing_dispute"]
            s["intents"] = ",".join(rng.sample(topics, rng.randint(1, 2)))
        if rng.random() < 0.3:
            s["keypad"] = rng.choice(["0", "1", "2", "3"])
        for flag in ("escalated", "asked_manager", "anger_rose", "rerouted", "opted_out"):
            if rng.random() < 0.15:
                s[flag] = "1"
        if rng.random() < 0.8:
            s["caller_hash"] = f"h{rng.randint(0, 120)}"
        if rng.random() < 0.5:
            s["csat"] = str(rng.randint(1, 5))
        if rng.random() < 0.6 and "decided_at" in s:
            s["agent"] = rng.choice(["ana", "ben", "chloe"])
            if rng.random() < 0.7:
                s["enqueued_at"] = repr(float(s["decided_at"]) + 2)
            s["picked_at"] = repr(float(s["decided_at"]) + rng.uniform(5, 90))
        if rng.random() < 0.7:  # the caller's language, when identified
            s["language"] = rng.choice(["en", "en", "en", "es", "pl"])
            if s["language"] != "en" and rng.random() < 0.8:  # asked at the language check, and what they keyed
                s["language_checked"] = s["language"]
                s["language_check"] = rng.choice(["kept", "kept", "en", "pl" if s["language"] == "es" else "es"])
        out.append(s)
    return out


def expected(rows: list[dict[str, str]], lo: float, hi: float, days: float) -> dict[str, Any]:
    """The figures as Python counts them, call by call (dashboards.insights), for calls started in [lo, hi]."""
    ordered = sorted(rows, key=lambda r: (float(r["started_at"]), r["call_sid"]))
    period = [dict(r) for r in ordered if lo <= float(r["started_at"]) <= hi]
    earlier = [r for r in ordered if lo - days * DAY <= float(r["started_at"]) <= hi]
    tally = Tally.of(period, KEYS)
    return {"start": lo, "end": hi, "source": "history", "synthetic_calls": 0, **tally.analytics(QUEUES),
            **insights_from(tally, QUEUES, repeat_figures(period, earlier, days))}


def same(a: Any, b: Any, path: str = "") -> None:
    """Assert two JSON-like values are equal, numbers within a rounding step (sums are added in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, abs_tol=1.5e-3), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_every_analytics_figure_from_sql_equals_the_one_counted_call_by_call(history):
    rows = summaries(600)
    history.write([CallRecord(r["call_sid"], r) for r in rows], archived_at=T0 + 5 * DAY, key_intents=KEYS)
    for lo, hi, days in ((T0, T0 + 4 * DAY, 7.0), (T0 + DAY, T0 + 2.5 * DAY, 1.0), (T0 + 9 * DAY, T0 + 10 * DAY, 7.0)):
        got = period_figures(history, lo, hi, queues=QUEUES, key_intents=KEYS, repeat_days=days)
        want = expected(rows, lo, hi, days)
        same(want, got)
    full = period_figures(history, T0, T0 + 4 * DAY, queues=QUEUES, key_intents=KEYS, repeat_days=7.0)
    # whole days were counted once and stored; read again, they give the same figures
    assert history.query("SELECT count(*) FROM analytics_days")[0][0] == 3
    same(expected(rows, T0, T0 + 4 * DAY, 7.0), full)
    # a call written into a stored day (a late survey, a late archive) and a caller erased: recounted, never stale
    late = dict(rows[5], call_sid="CA" + "f" * 32, started_at=repr(float(rows[300]["started_at"]) + 1))
    history.write([CallRecord(late["call_sid"], late)], archived_at=T0 + 6 * DAY, key_intents=KEYS)
    history.erase(caller_hashes=[rows[10]["caller_hash"]])
    now_rows = [r for r in [*rows, late] if r.get("caller_hash") != rows[10]["caller_hash"]]
    same(expected(now_rows, T0, T0 + 4 * DAY, 7.0),
         period_figures(history, T0, T0 + 4 * DAY, queues=QUEUES, key_intents=KEYS, repeat_days=7.0))
    # the sample exercises every part: these would be empty if a query matched nothing
    assert full["calls"] == 600 and full["repeat_callers"]["repeat_calls"] > 50
    assert full["phases"]["hurts_most"] and len(full["phases"]["worsened"]) == 10
    assert full["topics"]["totals"]["purchase"] > 0 and full["csat"]["disagreements"]
    assert full["agents"]["ana"]["compared"]


def test_the_csv_export_from_sql_lists_each_call_once_in_order_with_its_repeat_mark(history):
    rows = summaries(300, seed=11)
    history.write([CallRecord(r["call_sid"], r) for r in rows], archived_at=T0 + 5 * DAY, key_intents=KEYS)
    lo, hi = T0 + DAY, T0 + 3 * DAY
    got = [c for batch in csv_batches(history, lo, hi, repeat_days=2.0, batch=37) for c in batch]
    want = expected(rows, lo, hi, 2.0)
    period = sorted((r for r in rows if lo <= float(r["started_at"]) <= hi),
                    key=lambda r: (float(r["started_at"]), r["call_sid"]))
    assert [c["call_sid"] for c in got] == [r["call_sid"] for r in period]
    assert sum(c.get("repeat_caller") == "1" for c in got) == want["repeat_callers"]["repeat_calls"] > 0
    staged = next(i for i, r in enumerate(period) if r.get("phase_stats"))  # the first call with phase means
    assert got[staged]["phase_stats"] == period[staged]["phase_stats"]


def test_whole_days_counted_ahead_in_the_background_are_what_a_request_then_reads(history):
    from dashboards.sql_insights import warm_days

    rows = summaries(200, seed=5)
    history.write([CallRecord(r["call_sid"], r) for r in rows], archived_at=T0 + 5 * DAY, key_intents=KEYS)
    stops = iter([False, False, True])
    assert warm_days(history, days=7, key_intents=KEYS, now=T0 + 6 * DAY, stop=lambda: next(stops)) == 2
    assert warm_days(history, days=7, key_intents=KEYS, now=T0 + 6 * DAY) == 7
    days_with_calls = {int(float(r["started_at"]) // DAY) for r in rows}
    stored = {day for (day,) in history.query("SELECT day FROM analytics_days")}
    assert stored == days_with_calls and len(stored) == 5  # T0 is mid-day: the four days' calls touch five
    same(expected(rows, T0, T0 + 4 * DAY, 7.0),
         period_figures(history, T0, T0 + 4 * DAY, queues=QUEUES, key_intents=KEYS, repeat_days=7.0))


def test_a_version_1_store_is_upgraded_with_the_analytics_columns_filled_from_each_summary(tmp_path):
    import duckdb

    path = tmp_path / "v1.duckdb"
    rows = summaries(40, seed=3)
    db = duckdb.connect(str(path))  # the schema as version 1 created it
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (1)")
    db.execute("""CREATE TABLE calls (call_sid TEXT PRIMARY KEY, caller_hash TEXT, started_at DOUBLE PRECISION,
        ended_at DOUBLE PRECISION, status TEXT, queue TEXT, priority INTEGER, reason TEXT, rule TEXT, agent TEXT,
        first_emotion TEXT, emotion TEXT, decision_latency_ms DOUBLE PRECISION, opted_out BOOLEAN, csat INTEGER,
        end_reason TEXT, escalated BOOLEAN, summary TEXT, archived_at DOUBLE PRECISION)""")
    db.execute("""CREATE TABLE call_events (call_sid TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT,
        t DOUBLE PRECISION, label TEXT, kind TEXT, phase TEXT, arousal DOUBLE PRECISION, valence DOUBLE PRECISION,
        sentiment DOUBLE PRECISION, transcript TEXT, intents TEXT, queue TEXT, priority INTEGER, reason TEXT,
        agent TEXT, fields TEXT, PRIMARY KEY (call_sid, seq))""")
    for r in rows:
        db.execute("INSERT INTO calls (call_sid, caller_hash, started_at, queue, csat, summary, archived_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", [r["call_sid"], r.get("caller_hash"), float(r["started_at"]),
                                                    r.get("queue"), int(r["csat"]) if r.get("csat") else None,
                                                    json.dumps(r), T0 + 5 * DAY])
    db.execute("INSERT INTO call_events (call_sid, seq, type) VALUES (?, 0, 'started')", [rows[0]["call_sid"]])
    db.close()
    history = HistoryStore(f"duckdb://{path}")
    assert history.migrate(KEYS) == 1 and history.migrate(KEYS) == 2
    same(expected(rows, T0, T0 + 4 * DAY, 7.0),
         period_figures(history, T0, T0 + 4 * DAY, queues=QUEUES, key_intents=KEYS, repeat_days=7.0))
    assert history.query("SELECT count(*) FROM call_events")[0][0] == 1  # the timelines stay as they were
    history.close()
