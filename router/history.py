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
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

SCHEMA_VERSION = 1

CALL_COLUMNS = ("call_sid", "caller_hash", "started_at", "ended_at", "status", "queue", "priority", "reason",
                "rule", "agent", "first_emotion", "emotion", "decision_latency_ms", "opted_out", "csat",
                "end_reason", "escalated", "summary", "archived_at")
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


class HistoryError(RuntimeError):
    """The history store cannot be opened or written (named in the message)."""


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
                json.dumps(kept, sort_keys=True), archived_at)

    def event_rows(self) -> list[tuple[Any, ...]]:
        """Return the timeline's ``call_events`` rows, in order (column order: EVENT_COLUMNS)."""
        return [(self.call_sid, seq, e.get("type"), _num(e.get("t")), e.get("label"), e.get("kind"),
                 e.get("phase"), _num(e.get("arousal")), _num(e.get("valence")), _num(e.get("sentiment")),
                 e.get("transcript"), e.get("intents"), e.get("queue"), _int(e.get("priority")), e.get("reason"),
                 e.get("agent"), json.dumps({k: v for k, v in e.items() if k != "id"}, sort_keys=True))
                for seq, e in enumerate(self.timeline)]


def _pg_interface_error() -> type[Exception]:
    from pg8000.exceptions import InterfaceError

    return InterfaceError


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
    ``postgresql://user:password@host:port/database``. One connection, used by one thread at a time.
    """

    def __init__(self, url: str) -> None:
        """Open the store at ``url`` (HistoryError names what is wrong)."""
        self.url = url
        self.engine = urlsplit(url).scheme.split("+")[0]
        if self.engine not in ("duckdb", "postgresql", "postgres"):
            raise HistoryError(f"unknown history store {url!r}: use duckdb:///path or postgresql://...")
        self.placeholder = "?" if self.engine == "duckdb" else "%s"
        self._lock = threading.Lock()
        self._db: Any = self._connect()

    def _connect(self) -> Any:
        if self.engine == "duckdb":
            import duckdb

            path = unquote(self.url.split("://", 1)[1]) or ":memory:"  # duckdb:///abs/path, duckdb://:memory:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                return duckdb.connect(path)
            except duckdb.Error as exc:
                raise HistoryError(f"cannot open the DuckDB history file {path}: {exc}") from exc
        import pg8000.dbapi

        parts = urlsplit(self.url)
        try:
            return pg8000.dbapi.connect(
                user=unquote(parts.username or "postgres"), password=unquote(parts.password or "") or None,
                host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                database=(parts.path or "/emoroute").lstrip("/") or "emoroute", timeout=10)
        except (pg8000.dbapi.Error, OSError) as exc:
            raise HistoryError(f"cannot connect to the PostgreSQL history store at {parts.hostname}:"
                               f"{parts.port or 5432}: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor on the connection, opened again if a failure closed it (PostgreSQL restarted)."""
        if self._db is None:
            self._db = self._connect()
        # DuckDB: the connection itself (its cursor() is another connection, with its own transactions)
        cur = self._db if self.engine == "duckdb" else self._db.cursor()
        try:
            yield cur
        except BaseException as exc:
            self._drop_if_broken(exc)
            raise
        finally:
            if cur is not self._db:
                with suppress(Exception):  # a cursor of a dead connection may not close cleanly
                    cur.close()

    def _drop_if_broken(self, exc: BaseException) -> None:
        """Roll back; a connection that failed at the network level is closed, and the next use opens another."""
        broken = self.engine != "duckdb" and isinstance(exc, (OSError, _pg_interface_error()))
        if not broken:
            try:
                self._db.rollback()
                return
            except Exception:  # noqa: BLE001 - the rollback failed too: treat the connection as gone
                pass
        with suppress(Exception):
            self._db.close()
        self._db = None

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock, self._cursor() as cur:
            if self.engine == "duckdb":
                cur.execute("BEGIN TRANSACTION")
            yield cur
            self._db.commit()

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder)

    def migrate(self) -> int:
        """Create or bring the schema up to :data:`SCHEMA_VERSION`; return the version found before (0: new)."""
        with self._transaction() as cur:
            for statement in _DDL:
                cur.execute(statement)
            cur.execute("SELECT max(version) FROM schema_version")
            found = cur.fetchone()[0] or 0
            if found > SCHEMA_VERSION:
                raise HistoryError(f"the history store has schema {found}, newer than this EmoRoute's "
                                   f"{SCHEMA_VERSION}: upgrade EmoRoute")
            if found < SCHEMA_VERSION:
                cur.execute(self._sql("INSERT INTO schema_version (version) VALUES (?)"), (SCHEMA_VERSION,))
        return int(found)

    def write(self, records: Sequence[CallRecord], *, archived_at: float) -> int:
        """Write these calls (each replacing any earlier copy of it) in one transaction; return how many."""
        if not records:
            return 0
        sids = [r.call_sid for r in records]
        marks = ", ".join(self.placeholder for _ in sids)
        with self._transaction() as cur:
            cur.execute(f"DELETE FROM call_events WHERE call_sid IN ({marks})", sids)  # noqa: S608 - placeholders
            cur.execute(f"DELETE FROM calls WHERE call_sid IN ({marks})", sids)  # noqa: S608
            cur.executemany(self._sql(f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES "
                                      f"({', '.join('?' for _ in CALL_COLUMNS)})"),
                            [r.call_row(archived_at) for r in records])
            events = [row for r in records for row in r.event_rows()]
            if events:
                cur.executemany(self._sql(f"INSERT INTO call_events ({', '.join(EVENT_COLUMNS)}) VALUES "
                                          f"({', '.join('?' for _ in EVENT_COLUMNS)})"), events)
        return len(records)

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
            cur.execute(f"SELECT call_sid FROM calls WHERE call_sid IN ({marks})", wanted)  # noqa: S608
            found = sorted(row[0] for row in cur.fetchall())
            cur.execute(f"DELETE FROM call_events WHERE call_sid IN ({marks})", wanted)  # noqa: S608
            cur.execute(f"DELETE FROM calls WHERE call_sid IN ({marks})", wanted)  # noqa: S608
        return found

    def purge(self, *, started_before: float) -> int:
        """Delete the calls that started before ``started_before`` (retention); return how many."""
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT count(*) FROM calls WHERE started_at < ?"), (started_before,))
            found = int(cur.fetchone()[0])
            cur.execute(self._sql("DELETE FROM call_events WHERE call_sid IN "
                                  "(SELECT call_sid FROM calls WHERE started_at < ?)"), (started_before,))
            cur.execute(self._sql("DELETE FROM calls WHERE started_at < ?"), (started_before,))
        return found

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query (``?`` placeholders); return its rows."""
        with self._lock, self._cursor() as cur:
            cur.execute(self._sql(sql), list(params))
            rows = [tuple(row) for row in cur.fetchall()]
            if self.engine != "duckdb":
                self._db.commit()  # end the read's transaction (PostgreSQL)
            return rows

    def call(self, call_sid: str) -> dict[str, Any] | None:
        """Return one archived call's row as a dict, or None."""
        rows = self.query(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls WHERE call_sid = ?", [call_sid])  # noqa: S608
        return dict(zip(CALL_COLUMNS, rows[0], strict=True)) if rows else None

    def timeline(self, call_sid: str) -> list[dict[str, str]]:
        """Return one archived call's timeline entries, in order, as they were stored in Redis."""
        rows = self.query("SELECT fields FROM call_events WHERE call_sid = ? ORDER BY seq", [call_sid])
        return [json.loads(row[0]) for row in rows]
