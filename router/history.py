"""Call history on an analytical SQL store: DuckDB embedded (a file), or PostgreSQL beyond one box.

Redis keeps the live calls; finished calls are handed to the archiver (router.archive), which
writes each one here, keyed by its CallSid, so writing a call twice leaves one copy. One schema
on both engines, created and migrated by :meth:`HistoryStore.migrate`:

- ``calls``: one row per call (who by salted hash only, when, where it was routed and why, the
  agent, first and last emotion, CSAT, opt-out, the summary's other fields as JSON).
- ``call_events``: the call's timeline, one row per entry in order (``seq``), with the fields the
  analytics read as columns and every field as JSON.
- Read-only views for BI tools: ``readings``, ``transcripts``, ``decisions``, ``phases``,
  ``pickups``, ``surveys`` (docs/HISTORY.md describes each column).

Numbers are never stored here (Redis keeps the raw caller for the live views only); erasure by a
caller's number goes by its salted hash. Opted-out calls arrive with their analysis already
deleted (router.store.CallStore.opt_out).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from router.phases import PHASES, parse_phase_stats
from router.sql_connection import HistoryError, SqlConnection

__all__ = ["CallRecord", "HistoryError", "HistoryStore", "topics_of"]

SCHEMA_VERSION = 2

# version 2 added the columns the analytics read (dashboards.sql_insights), one per summary field
# or phase mean, and ``call_topics``: a figure over millions of calls is then one scan, no JSON
ANALYTIC_COLUMNS = ("first_valence", "last_valence", "peak_anger", "asked_manager", "anger_rose", "rerouted",
                    "keypad", "intents", "decided_at", "enqueued_at", "picked_at", "synthetic",
                    *(f"{p}_{m}" for p in PHASES for m in ("readings", "anger", "valence")), "language",
                    "language_checked", "language_check")
# (language_checked / language_check, added without a version: the language a caller was taken for at the
# language check and what they keyed, "kept", "en" or a language's code; NULL before they were recorded)
_ANALYTIC_TYPES = {"asked_manager": "BOOLEAN", "anger_rose": "BOOLEAN", "rerouted": "BOOLEAN", "synthetic": "BOOLEAN",
                   "keypad": "TEXT", "intents": "TEXT", "language": "TEXT", "language_checked": "TEXT",
                   "language_check": "TEXT",
                   **{f"{p}_readings": "INTEGER" for p in PHASES}}
CALL_COLUMNS = ("call_sid", "caller_hash", "started_at", "ended_at", "status", "queue", "priority", "reason",
                "rule", "agent", "first_emotion", "emotion", "decision_latency_ms", "opted_out", "csat",
                "end_reason", "escalated", "summary", "archived_at", *ANALYTIC_COLUMNS)
TOPIC_COLUMNS = ("call_sid", "topic", "started_at", "queue", "first_emotion", "peak_anger")
NO_TOPIC = "(none)"  # the topic row of a call in which no intent was heard or keyed
EVENT_COLUMNS = ("call_sid", "seq", "type", "t", "label", "kind", "phase", "arousal", "valence", "sentiment",
                 "transcript", "intents", "queue", "priority", "reason", "agent", "fields")
# summary fields never archived: the raw caller (the hash stands in) and live-only state
_NOT_ARCHIVED = {"caller", "stream_sid", "owner", "partial_transcript", "agent_hint"}

_DDL = [
    """CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS calls (
        call_sid TEXT PRIMARY KEY, caller_hash TEXT, started_at DOUBLE PRECISION, ended_at DOUBLE PRECISION,
        status TEXT, queue TEXT, priority INTEGER, reason TEXT, rule TEXT, agent TEXT, first_emotion TEXT,
        emotion TEXT, decision_latency_ms DOUBLE PRECISION, opted_out BOOLEAN, csat INTEGER, end_reason TEXT,
        escalated BOOLEAN, summary TEXT, archived_at DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS call_events (
        call_sid TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT, t DOUBLE PRECISION, label TEXT, kind TEXT,
        phase TEXT, arousal DOUBLE PRECISION, valence DOUBLE PRECISION, sentiment DOUBLE PRECISION,
        transcript TEXT, intents TEXT, queue TEXT, priority INTEGER, reason TEXT, agent TEXT, fields TEXT,
        PRIMARY KEY (call_sid, seq))""",
    *(f"ALTER TABLE calls ADD COLUMN IF NOT EXISTS {c} {_ANALYTIC_TYPES.get(c, 'DOUBLE PRECISION')}"
      for c in ANALYTIC_COLUMNS),
    # the caller's previous call's start (repeat callers without a window over every call), kept by _link_callers
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS prev_started_at DOUBLE PRECISION",
    # one UTC day's analytics sums, valid while the day's calls are as counted (dashboards.sql_insights)
    """CREATE TABLE IF NOT EXISTS analytics_days (
        day BIGINT NOT NULL, version TEXT NOT NULL, calls INTEGER NOT NULL, last_archived DOUBLE PRECISION,
        tally TEXT NOT NULL, PRIMARY KEY (day, version))""",
    """CREATE TABLE IF NOT EXISTS call_topics (
        call_sid TEXT NOT NULL, topic TEXT NOT NULL, started_at DOUBLE PRECISION, queue TEXT, first_emotion TEXT,
        peak_anger DOUBLE PRECISION, PRIMARY KEY (call_sid, topic))""",
    "CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at)",
    "CREATE INDEX IF NOT EXISTS calls_caller ON calls (caller_hash)",
    """CREATE OR REPLACE VIEW readings AS SELECT call_sid, seq, t, kind, label, arousal, valence, phase
        FROM call_events WHERE type = 'reading'""",
    """CREATE OR REPLACE VIEW transcripts AS SELECT call_sid, seq, t, transcript, intents, sentiment
        FROM call_events WHERE transcript IS NOT NULL AND transcript <> ''""",
    """CREATE OR REPLACE VIEW decisions AS SELECT call_sid, seq, t, type, queue, priority, reason
        FROM call_events WHERE type IN ('decision', 'keypad', 'reroute', 'reprioritise')""",
    """CREATE OR REPLACE VIEW phases AS SELECT call_sid, seq, t, phase FROM call_events WHERE type = 'phase'""",
    """CREATE OR REPLACE VIEW pickups AS SELECT call_sid, seq, t, agent FROM call_events WHERE type = 'pickup'""",
    """CREATE OR REPLACE VIEW surveys AS SELECT call_sid, csat, agent, queue, first_emotion, emotion
        FROM calls WHERE csat IS NOT NULL""",
]


def topics_of(summary: dict[str, str], key_intents: dict[str, str]) -> list[str]:
    """Return a call's topics: the intents heard, and the one its keypad key states (keypad key -> intent)."""
    found = [i for i in (summary.get("intents") or "").split(",") if i]
    keyed = key_intents.get(summary.get("keypad", ""), "")
    if keyed and keyed not in found:
        found.append(keyed)
    return found


@dataclass
class CallRecord:
    """One finished call as the archiver hands it over: its summary hash and its timeline entries."""

    call_sid: str
    summary: dict[str, str]
    timeline: list[dict[str, str]] = field(default_factory=list)

    def call_row(self, archived_at: float) -> tuple[Any, ...]:
        """Return the call's ``calls`` row (column order: CALL_COLUMNS)."""
        s = self.summary
        kept = {k: v for k, v in s.items() if k not in _NOT_ARCHIVED}
        return (self.call_sid, s.get("caller_hash") or None, _num(s.get("started_at")), _num(s.get("ended_at")),
                s.get("status"), s.get("queue"), _int(s.get("priority")), s.get("reason"), s.get("rule"),
                s.get("agent"), s.get("first_emotion"), s.get("emotion"), _num(s.get("decision_latency_ms")),
                s.get("opted_out") == "1", _int(s.get("csat")), s.get("end_reason"), s.get("escalated") == "1",
                json.dumps(kept, sort_keys=True), archived_at, *self._analytic_values())

    def _analytic_values(self) -> list[Any]:
        """Return the ANALYTIC_COLUMNS' values: summary fields as numbers and flags, each phase's means."""
        s = self.summary
        values: list[Any] = [_num(s.get("first_valence")), _num(s.get("last_valence")), _num(s.get("peak_anger")),
                             s.get("asked_manager") == "1", s.get("anger_rose") == "1", s.get("rerouted") == "1",
                             s.get("keypad") or None, s.get("intents") or None, _num(s.get("decided_at")),
                             _num(s.get("enqueued_at")) if s.get("enqueued_at") else None,
                             _num(s.get("picked_at")), s.get("synthetic") == "1"]
        stats = parse_phase_stats(s.get("phase_stats"))
        for phase in PHASES:
            values += list(stats[phase]) if phase in stats else [None, None, None]
        return [*values, s.get("language") or None, s.get("language_checked") or None, s.get("language_check") or None]

    def topic_rows(self, key_intents: dict[str, str]) -> list[tuple[Any, ...]]:
        """Return the call's ``call_topics`` rows (one per topic, or one ``(none)``; column order: TOPIC_COLUMNS)."""
        s = self.summary
        queue = s.get("queue") or "undecided"
        return [(self.call_sid, topic, _num(s.get("started_at")), queue, s.get("first_emotion") or None,
                 _num(s.get("peak_anger"))) for topic in topics_of(s, key_intents) or [NO_TOPIC]]

    def event_rows(self) -> list[tuple[Any, ...]]:
        """Return the timeline's ``call_events`` rows, in order (column order: EVENT_COLUMNS)."""
        return [(self.call_sid, seq, e.get("type"), _num(e.get("t")), e.get("label"), e.get("kind"),
                 e.get("phase"), _num(e.get("arousal")), _num(e.get("valence")), _num(e.get("sentiment")),
                 e.get("transcript"), e.get("intents"), e.get("queue"), _int(e.get("priority")), e.get("reason"),
                 e.get("agent"), json.dumps({k: v for k, v in e.items() if k != "id"}, sort_keys=True))
                for seq, e in enumerate(self.timeline)]


_BOOLEANS = {"opted_out", "escalated", "asked_manager", "anger_rose", "rerouted", "synthetic"}
_INTEGERS = {"priority", "csat", "seq", *(f"{p}_readings" for p in PHASES)}
_DOUBLES = {"started_at", "ended_at", "decision_latency_ms", "archived_at", "first_valence", "last_valence",
            "peak_anger", "decided_at", "enqueued_at", "picked_at", "t", "arousal", "valence", "sentiment",
            *(f"{p}_{m}" for p in PHASES for m in ("anger", "valence"))}


def _pg_type(column: str) -> str:
    """Return a column's PostgreSQL type (as the DDL above declares it)."""
    return ("boolean" if column in _BOOLEANS else "integer" if column in _INTEGERS
            else "double precision" if column in _DOUBLES else "text")


def _num(value: object) -> float | None:
    try:
        return float(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _int(value: object) -> int | None:
    number = _num(value)
    return int(number) if number is not None else None


class HistoryStore:
    """The SQL store of finished calls (DuckDB or PostgreSQL); every method is blocking (call it off the loop).

    ``url``: ``duckdb:///path/to/history.duckdb`` (a file; ``duckdb://:memory:`` for none) or
    ``postgresql://user:password@host:port/database``; the connection is router.sql_connection's.
    This class owns the schema and what is written to and deleted from it.
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        """Open the store at ``url`` (HistoryError names what is wrong).

        ``timeout_s``: how long PostgreSQL may take to answer before the connection is given up.
        """
        self.db = SqlConnection(url, timeout_s=timeout_s)
        self.url, self.engine, self.placeholder = url, self.db.engine, self.db.placeholder

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def _transaction(self) -> AbstractContextManager[Any]:
        return self.db.transaction()

    def _sql(self, text: str) -> str:
        return self.db.sql(text)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query (``?`` placeholders); return its rows."""
        return self.db.query(sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one writing statement (``?`` placeholders) in a transaction of its own."""
        self.db.execute(sql, params)

    def migrate(self, key_intents: dict[str, str] | None = None) -> int:
        """Create or bring the schema up to :data:`SCHEMA_VERSION`; return the version found before (0: new).

        From version 1, the analytics' columns and topics are filled from each call's stored summary
        (``key_intents``: the keypad's topics, as :meth:`write` takes them).
        """
        with self._transaction() as cur:
            for statement in _DDL:
                cur.execute(statement)
            cur.execute("SELECT max(version) FROM schema_version")
            found = cur.fetchone()[0] or 0
            if found > SCHEMA_VERSION:
                raise HistoryError(f"the history store has schema {found}, newer than this EmoRoute's "
                                   f"{SCHEMA_VERSION}: upgrade EmoRoute")
            if found == 1:
                cur.execute("SELECT call_sid, summary, archived_at FROM calls")
                old = [(CallRecord(sid, json.loads(summary or "{}")), at) for sid, summary, at in cur.fetchall()]
                for start in range(0, len(old), 1000):
                    self._replace(cur, old[start:start + 1000], key_intents or {}, events=False, link=False)
                self.link_callers(cur)
            if found < SCHEMA_VERSION:
                cur.execute(self._sql("INSERT INTO schema_version (version) VALUES (?)"), (SCHEMA_VERSION,))
        return int(found)

    def write(self, records: Sequence[CallRecord], *, archived_at: float,
              key_intents: dict[str, str] | None = None) -> int:
        """Write these calls (each replacing any earlier copy of it) in one transaction; return how many.

        ``key_intents`` (keypad key -> intent, the policy's) names the topic a key pressed stated.
        """
        if not records:
            return 0
        with self._transaction() as cur:
            self._replace(cur, [(r, archived_at) for r in records], key_intents or {})
        return len(records)

    def link_callers(self, cur: Any, caller_hashes: Sequence[str] | None = None) -> None:
        """Set each call's ``prev_started_at``: the start of its caller's call before it (None: the first).

        Only the calls of ``caller_hashes`` (None: every caller). Run in the transaction that wrote
        or deleted their calls, so a call archived after a later one of the same caller still links.
        """
        if caller_hashes is not None and not caller_hashes:
            return
        which = ""
        params: list[Any] = []
        if caller_hashes is not None:
            which = f" AND caller_hash IN ({', '.join(self.placeholder for _ in caller_hashes)})"
            params = list(caller_hashes)
        cur.execute("UPDATE calls SET prev_started_at = linked.prev FROM (SELECT call_sid, LAG(started_at) OVER "  # noqa: S608
                    "(PARTITION BY caller_hash ORDER BY started_at, call_sid) AS prev FROM calls "
                    f"WHERE caller_hash <> ''{which}) AS linked WHERE calls.call_sid = linked.call_sid "
                    "AND calls.prev_started_at IS DISTINCT FROM linked.prev", params)

    def _replace(self, cur: Any, records: Sequence[tuple[CallRecord, float]], key_intents: dict[str, str], *,
                 events: bool = True, link: bool = True) -> None:
        """Delete any earlier copy of these calls and insert them (``events``: their timelines too)."""
        sids = [r.call_sid for r, _ in records]
        marks = ", ".join(self.placeholder for _ in sids)
        for table in ("call_topics", *(["call_events"] if events else []), "calls"):
            cur.execute(f"DELETE FROM {table} WHERE call_sid IN ({marks})", sids)  # noqa: S608 - placeholders
        self._insert(cur, "calls", CALL_COLUMNS, [r.call_row(at) for r, at in records])
        self._insert(cur, "call_topics", TOPIC_COLUMNS, [row for r, _ in records for row in r.topic_rows(key_intents)])
        if events:
            self._insert(cur, "call_events", EVENT_COLUMNS, [row for r, _ in records for row in r.event_rows()])
        if link:
            self.link_callers(cur, sorted({r.summary["caller_hash"] for r, _ in records
                                           if r.summary.get("caller_hash")}))

    def _insert(self, cur: Any, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` into ``table``: on DuckDB one statement over column lists, on PostgreSQL row by row.

        (DuckDB's executemany runs one statement per row, 3.5 ms each: 70 s for 20,000 calls.)
        """
        if not rows:
            return
        values = [list(col) for col in zip(*rows, strict=True)]
        if self.engine == "duckdb":
            cur.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT "  # noqa: S608 - fixed names
                        f"{', '.join('unnest(?)' for _ in columns)}", values)
        else:  # one array per column: one round trip, where executemany takes one per row (11 ms a call)
            cur.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest("  # noqa: S608
                        f"{', '.join(f'%s::{_pg_type(c)}[]' for c in columns)})", values)

    def erase(self, *, call_sids: Sequence[str] = (), caller_hashes: Sequence[str] = ()) -> list[str]:
        """Delete these calls, and every call of these callers (salted hashes); return the SIDs it held."""
        with self._transaction() as cur:
            wanted = list(call_sids)
            if caller_hashes:
                marks = ", ".join(self.placeholder for _ in caller_hashes)
                cur.execute(f"SELECT call_sid FROM calls WHERE caller_hash IN ({marks})",  # noqa: S608
                            list(caller_hashes))
                wanted += [row[0] for row in cur.fetchall()]
            wanted = sorted(set(wanted))
            if not wanted:
                return []
            marks = ", ".join(self.placeholder for _ in wanted)
            cur.execute(f"SELECT call_sid, caller_hash FROM calls WHERE call_sid IN ({marks})", wanted)  # noqa: S608
            rows = cur.fetchall()
            found = sorted(row[0] for row in rows)
            for table in ("call_topics", "call_events", "calls"):
                cur.execute(f"DELETE FROM {table} WHERE call_sid IN ({marks})", wanted)  # noqa: S608
            self.link_callers(cur, sorted({row[1] for row in rows if row[1]}))  # their other calls' "previous"
        return found

    def erase_synthetic(self) -> int:
        """Delete the synthetic calls (``emoroute demo --synthetic-week``); return how many."""
        with self._transaction() as cur:
            cur.execute("SELECT count(*) FROM calls WHERE synthetic")
            found = int(cur.fetchone()[0])
            for table in ("call_topics", "call_events"):
                cur.execute(f"DELETE FROM {table} WHERE call_sid IN "  # noqa: S608 - a fixed name
                            "(SELECT call_sid FROM calls WHERE synthetic)")
            cur.execute("DELETE FROM calls WHERE synthetic")
        return found

    def purge(self, *, started_before: float) -> int:
        """Delete the calls that started before ``started_before`` (retention); return how many."""
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT count(*) FROM calls WHERE started_at < ?"), (started_before,))
            found = int(cur.fetchone()[0])
            for table in ("call_topics", "call_events"):
                cur.execute(self._sql(f"DELETE FROM {table} WHERE call_sid IN "  # noqa: S608 - a fixed name
                                      "(SELECT call_sid FROM calls WHERE started_at < ?)"), (started_before,))
            cur.execute(self._sql("DELETE FROM calls WHERE started_at < ?"), (started_before,))
        return found

    def started_bounds(self) -> tuple[float, float] | None:
        """Return the first and the last start of the stored calls, or None when there are none."""
        lo, hi = self.query("SELECT min(started_at), max(started_at) FROM calls")[0]
        return None if lo is None else (float(lo), float(hi))

    def call(self, call_sid: str) -> dict[str, Any] | None:
        """Return one archived call's row as a dict, or None."""
        rows = self.query(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls WHERE call_sid = ?", [call_sid])  # noqa: S608
        return dict(zip(CALL_COLUMNS, rows[0], strict=True)) if rows else None

    def timeline(self, call_sid: str) -> list[dict[str, str]]:
        """Return one archived call's timeline entries, in order, as they were stored in Redis."""
        rows = self.query("SELECT fields FROM call_events WHERE call_sid = ? ORDER BY seq", [call_sid])
        return [json.loads(row[0]) for row in rows]
