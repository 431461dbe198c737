"""One connection to the history store's SQL engine: DuckDB (a file) or PostgreSQL (pg8000).

Used by router.history. One connection, used by one thread at a time (a lock), opened again
after a network failure closed it (PostgreSQL restarted); ``?`` placeholders on both engines.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


class HistoryError(RuntimeError):
    """The history store cannot be opened or written (named in the message)."""


def _pg_interface_error() -> type[Exception]:
    from pg8000.exceptions import InterfaceError

    return InterfaceError


class SqlConnection:
    """A DuckDB or PostgreSQL connection with transactions, reads and one-statement writes; all blocking."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        """Connect to ``url`` (``duckdb:///path``, ``duckdb://:memory:``, ``postgresql://...``).

        ``timeout_s``: how long PostgreSQL may take to answer before the connection is given up.
        """
        self.url = url
        self.timeout_s = timeout_s
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
                database=(parts.path or "/emoroute").lstrip("/") or "emoroute", timeout=self.timeout_s)
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
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction, committed when the block ends without an error."""
        with self._lock, self._cursor() as cur:
            if self.engine == "duckdb":
                cur.execute("BEGIN TRANSACTION")
            yield cur
            self._db.commit()

    def sql(self, text: str) -> str:
        """Return ``text`` with its ``?`` placeholders in the engine's style."""
        return text.replace("?", self.placeholder)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query (``?`` placeholders); return its rows."""
        with self._lock, self._cursor() as cur:
            cur.execute(self.sql(sql), list(params))
            rows = [tuple(row) for row in cur.fetchall()]
            if self.engine != "duckdb":
                self._db.commit()  # end the read's transaction (PostgreSQL)
            return rows

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one writing statement (``?`` placeholders) in a transaction of its own."""
        with self.transaction() as cur:
            cur.execute(self.sql(sql), list(params))
