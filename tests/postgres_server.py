"""A real PostgreSQL server for the tests, from Debian's `postgresql` package, started here.

initdb refuses to run as root: when the tests run as root, the server runs as the `postgres`
user the package creates, with its files in a directory that user owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from emoroute.redis_server import free_port
from router.history import HistoryStore

BIN = Path("/usr/lib/postgresql")


def _binary(name: str) -> str:
    found = shutil.which(name) or next((str(p) for p in sorted(BIN.glob(f"*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise RuntimeError(f"no {name}: install Debian's postgresql package")
    return found


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1 with a database ``emoroute`` (trust authentication)."""

    def __init__(self) -> None:
        """Prepare a data directory (removed by :meth:`stop`)."""
        self.root = Path(tempfile.mkdtemp(prefix="emoroute-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        """The history store URL of the test database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/emoroute"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Create the cluster (first time), start it and create the database."""
        if not self.data.exists():
            self._run(_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-sync")
            first = True
        else:
            first = False
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off", "start")
        if first:
            import pg8000.dbapi

            con = pg8000.dbapi.connect(user="postgres", host="127.0.0.1", port=self.port, database="postgres")
            con.autocommit = True
            con.cursor().execute("CREATE DATABASE emoroute")
            con.close()

    def restart(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: as if killed, no clean shutdown) and start it again."""
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        self.start()

    def empty_history(self) -> HistoryStore:
        """Return the test database as a history store at the current schema, with no calls in it."""
        store = HistoryStore(self.url)
        store.migrate()
        with store._transaction() as cur:  # noqa: SLF001 - the tests own this database
            for table in ("call_topics", "call_events", "calls", "analytics_days"):
                cur.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        return store

    def stop(self) -> None:
        """Stop the server and remove its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
