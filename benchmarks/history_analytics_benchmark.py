"""Every analytics figure over millions of stored calls: DuckDB (10 million) and PostgreSQL (1 million), two cores.

The store is filled by SQL (``INSERT ... SELECT`` over a number series): calls spread over 30
days with queues, emotions, valences, phases (each present with its own chance), topics, flags,
waits, agents, surveys and callers who call again, so that every query has work to do. Then, with
the timings of ``dashboards.sql_insights.period_figures`` (every figure of the analytics page and
API, repeat callers included) over the whole month: the first request (every whole day counted
and its sums stored) and the requests after it (the stored days merged, the partial days at the
ends and the repeat callers counted), over one day, and of the CSV export's first batch of 5,000
calls (what a client waits for before the file starts streaming). One JSON line per engine.

    python -m benchmarks.history_analytics_benchmark --engine duckdb --calls 10000000
    python -m benchmarks.history_analytics_benchmark --engine postgresql --calls 1000000   # starts a server
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from dashboards.sql_insights import csv_batches, period_figures
from router.history import HistoryStore
from router.phases import PHASES

QUEUES = ["retention", "sales", "general"]
KEYS = {"1": "cancel", "3": "purchase"}
DAY = 86400.0
T0 = 1_790_000_000.0


def _pick(options: list[tuple[float, str]]) -> str:
    """A CASE choosing one SQL literal by cumulative chance (one random() per row)."""
    out, total = ["CASE"], 0.0
    for chance, value in options[:-1]:
        total += chance
        out.append(f"WHEN r1 < {total} THEN {value}")
    return " ".join([*out, f"ELSE {options[-1][1]} END"])


def fill_sql(n: int, engine: str) -> list[str]:
    """Return the statements that insert ``n`` calls and their topics."""
    series = f"range({n}) AS t(i)" if engine == "duckdb" else f"generate_series(0, {n - 1}) AS t(i)"
    rnd = ", ".join(f"random() AS r{k}" for k in range(1, 12))
    phases = ", ".join(f"CASE WHEN r{3 + j} < 0.6 THEN 1 + CAST(floor(r{3 + j} * 5) AS INTEGER) END, "
                       f"CASE WHEN r{3 + j} < 0.6 THEN r{4 + j} END, CASE WHEN r{3 + j} < 0.6 THEN r{3 + j} * 2 - 1 END"
                       for j, _ in enumerate(PHASES))
    phase_cols = ", ".join(f"{p}_readings, {p}_anger, {p}_valence" for p in PHASES)
    calls = f"""
    INSERT INTO calls (call_sid, caller_hash, started_at, ended_at, status, queue, priority, first_emotion, emotion,
        opted_out, csat, escalated, summary, archived_at, first_valence, last_valence, peak_anger, asked_manager,
        anger_rose, rerouted, keypad, intents, decided_at, enqueued_at, picked_at, agent, synthetic, {phase_cols})
    SELECT 'CA' || md5(CAST(i AS TEXT)), 'h' || CAST(CAST(floor(r2 * {max(1, n // 3)}) AS BIGINT) AS TEXT),
        {T0} + i * {30 * DAY / n}, {T0} + i * {30 * DAY / n} + 300, 'ended',
        {_pick([(0.25, "'retention'"), (0.2, "'sales'"), (0.5, "'general'"), (0.05, "NULL")])},
        1 + CAST(floor(r2 * 10) AS INTEGER),
        CASE WHEN r3 < 0.2 THEN 'angry' WHEN r3 < 0.4 THEN 'happy' WHEN r3 < 0.85 THEN 'neutral' ELSE 'sad' END,
        CASE WHEN r4 < 0.15 THEN 'angry' WHEN r4 < 0.4 THEN 'happy' ELSE 'neutral' END,
        r5 < 0.03, CASE WHEN r6 < 0.45 THEN 1 + CAST(floor(r7 * 5) AS INTEGER) END, r8 < 0.15, '{{}}', {T0 + 31 * DAY},
        r3 * 2 - 1, r4 * 2 - 1, r5, r9 < 0.05, r10 < 0.1, r11 < 0.04,
        CASE WHEN r9 < 0.1 THEN '1' WHEN r9 < 0.2 THEN '3' END,
        {_pick([(0.15, "'cancel'"), (0.12, "'complaint'"), (0.12, "'billing_dispute'"), (0.1, "'purchase'"),
                (0.08, "'upgrade'"), (0.43, "NULL")])},
        {T0} + i * {30 * DAY / n} + 5, {T0} + i * {30 * DAY / n} + 20, {T0} + i * {30 * DAY / n} + 20 + r6 * 200,
        CASE WHEN r10 < 0.7 THEN 'agent-' || CAST(CAST(floor(r11 * 40) AS INTEGER) AS TEXT) END, TRUE, {phases}
    FROM (SELECT i, {rnd} FROM {series}) AS g"""
    topics = ("INSERT INTO call_topics (call_sid, topic, started_at, queue, first_emotion, peak_anger) "
              "SELECT call_sid, COALESCE(intents, '(none)'), started_at, COALESCE(queue, 'undecided'), first_emotion, "
              "peak_anger FROM calls")
    return [calls, topics]


def _timed(fn: Any, repeat: int = 3) -> tuple[float, Any]:
    """Return the best of ``repeat`` runs' seconds, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def run(history: HistoryStore, n: int, engine: str) -> dict[str, Any]:
    """Fill the store with ``n`` calls and time the figures; return the JSON line's fields."""
    history.migrate()
    started = time.perf_counter()
    with history._transaction() as cur:  # noqa: SLF001 - the benchmark owns this store
        for table in ("call_topics", "call_events", "calls", "analytics_days"):
            cur.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        for statement in fill_sql(n, engine):
            cur.execute(statement)
        history.link_callers(cur)
    if engine != "duckdb":
        with history._transaction() as cur:  # noqa: SLF001 - the planner's statistics of the new rows
            cur.execute("ANALYZE")
    filled_s = time.perf_counter() - started

    def month() -> dict[str, Any]:
        return period_figures(history, T0, T0 + 30 * DAY, queues=QUEUES, key_intents=KEYS, repeat_days=7.0)

    def day() -> dict[str, Any]:
        return period_figures(history, T0 + 10 * DAY, T0 + 11 * DAY, queues=QUEUES, key_intents=KEYS, repeat_days=7.0)

    def first_csv_batch() -> int:
        return len(next(csv_batches(history, T0, T0 + 30 * DAY, repeat_days=7.0)))

    cold_s, _ = _timed(month, repeat=1)  # the first request: every whole day counted and stored
    month_s, figures = _timed(month)
    day_s, one_day = _timed(day)
    csv_s, batch = _timed(first_csv_batch)
    assert figures["calls"] == n and batch == 5000, (figures["calls"], batch)
    return {"benchmark": "history_analytics", "engine": engine, "calls": n, "fill_s": round(filled_s, 1),
            "all_figures_month_first_s": round(cold_s, 3), "all_figures_month_s": round(month_s, 3),
            "all_figures_day_s": round(day_s, 3),
            "csv_first_batch_s": round(csv_s, 3), "calls_in_day": one_day["calls"],
            "repeat_calls": figures["repeat_callers"]["repeat_calls"], "cores": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "target": {"duckdb": "<= 2 s over 10,000,000", "postgresql": "<= 3 s over 1,000,000"}[engine]}


def main() -> None:
    """Parse arguments, run, print one JSON line (and append it to ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["duckdb", "postgresql"], default="duckdb")
    parser.add_argument("--calls", type=int, default=None, help="default: 10,000,000 (DuckDB), 1,000,000 (PostgreSQL)")
    parser.add_argument("--postgres", help="a PostgreSQL URL to use (default: start a server from Debian's package)")
    parser.add_argument("--out", type=Path, help="append the JSON line to this file")
    args = parser.parse_args()
    n = args.calls or (10_000_000 if args.engine == "duckdb" else 1_000_000)
    server = None
    if args.engine == "duckdb":
        folder = tempfile.mkdtemp(prefix="emoroute-bench-")
        history = HistoryStore(f"duckdb://{folder}/history.duckdb")
    else:
        url = args.postgres
        if url is None:
            from tests.postgres_server import PostgresServer

            server = PostgresServer()
            server.start()
            url = server.url
        history = HistoryStore(url, timeout_s=1800)  # filling a million calls takes one long statement
    try:
        line = json.dumps(run(history, n, args.engine))
    finally:
        history.close()
        if server is not None:
            server.stop()
    print(line)  # noqa: T201
    if args.out:
        with args.out.open("a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
