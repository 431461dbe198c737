"""Failure drill: the Redis primary killed (SIGKILL) during a burst of callers, with real processes.

A primary, a replica and three Redis Sentinels (quorum 2, down-after 1 s); two ``emoroute serve``
web processes and one ``emoroute worker`` that follow the primary through the sentinels
(``REDIS_SENTINELS``, transcription as jobs on Redis Streams). Callers stream real speech at
real-time pace, split between the web processes; three seconds in, the primary is killed.
Reported: calls routed (Twilio told where, read from each process's dry-run record), decision
latency p50/p95 as the servers measured it, the time from the kill until the sentinels name a new
primary (watched while the callers talk), how long after the burst every call's record, decision
and end are on it, and what was lost or doubled (each call's timeline must hold one decision and
one end).

    python -m benchmarks.failover_drill --data ../shared/data --callers 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import redis

from benchmarks.latency_benchmark import _clips
from emoroute.redis_server import EmbeddedRedis, free_port, redis_server_binary
from emoroute.simulate import SimTarget, simulate_call
from router import keys

MASTER = "mymaster"


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until ``predicate()`` is true, or stop the drill naming ``what``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


class SentinelSet:
    """A primary, one replica and three sentinels (quorum 2), each a real redis-server process."""

    def __init__(self, tmp: Path) -> None:
        """Prepare the processes, their files under ``tmp``."""
        self.tmp = tmp
        self.primary = EmbeddedRedis(tmp / "primary", persist=True)
        self.replica = EmbeddedRedis(tmp / "replica", persist=True)
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start the primary, its replica and the sentinels; wait until every sentinel sees both."""
        self.primary.start()
        self.replica.extra_args = ("--replicaof", "127.0.0.1", str(self.primary.port))
        self.replica.start()
        for port in self.sentinel_ports:
            conf = self.tmp / f"sentinel-{port}.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.tmp}\n"
                            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2\n"
                            f"sentinel down-after-milliseconds {MASTER} 1000\n"
                            f"sentinel failover-timeout {MASTER} 4000\n"
                            f"sentinel parallel-syncs {MASTER} 1\n")
            self.sentinels.append(subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: all(self._sees_replica(p) for p in self.sentinel_ports), timeout=30,
                 what="every sentinel sees the primary and its replica")

    def _sees_replica(self, port: int) -> bool:
        try:
            with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as s:
                return len(s.sentinel_slaves(MASTER)) == 1 and len(s.sentinel_sentinels(MASTER)) == 2
        except redis.RedisError:
            return False

    @property
    def spec(self) -> str:
        """Return the sentinels as REDIS_SENTINELS lists them."""
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def primary_port(self) -> int:
        """Return the port of the primary the sentinels name now."""
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=1) as s:
            return int(s.sentinel_get_master_addr_by_name(MASTER)[1])

    def stop(self) -> None:
        """Stop every process of the set."""
        for proc in self.sentinels:
            proc.terminate()
        for proc in self.sentinels:
            proc.wait(timeout=10)
        self.replica.stop()
        self.primary.stop()



def _process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "emoroute.cli", *args], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)


def drill(clips: list, callers: int, tmp: Path) -> dict[str, object]:
    """Run the Redis-primary fault once; return its figures."""
    cluster = SentinelSet(tmp)
    cluster.start()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EMOROUTE_")},
           "REDIS_SENTINELS": cluster.spec, "EMOROUTE_ENVIRONMENT": "development", "EMOROUTE_ASR_MODE": "redis",
           # the load generator is one address streaming many calls: lift the per-address limits
           "EMOROUTE_MAX_FRAMES_PER_SECOND": "10000", "EMOROUTE_MAX_PENDING_STREAMS_PER_CLIENT": "1000",
           "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    ports = [free_port(), free_port()]
    procs = [_process(["serve", "--port", str(p)], {**env, "EMOROUTE_PUBLIC_URL": f"http://127.0.0.1:{p}",
                                                    "EMOROUTE_DATA_DIR": str(tmp / f"web-{p}")}, tmp / f"web-{p}.log")
             for p in ports]
    procs.append(_process(["worker", "--id", "drill-worker"], env, tmp / "worker.log"))
    try:
        for port in ports:
            wait_for(lambda port=port: _ready(port), timeout=180, what=f"web process on {port}")
        old_port = cluster.primary_port()
        targets = [SimTarget(url=f"http://127.0.0.1:{p}", public_url=f"http://127.0.0.1:{p}",
                             auth_token="dev-auth-token", api_token="dev-supervisor-token") for p in ports]
        killed: list[float] = []

        async def burst() -> list[dict[str, object]]:
            async def kill() -> None:
                await asyncio.sleep(3.0)
                os.kill(cluster.primary.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
                killed.append(time.monotonic())

            async def one(i: int) -> dict[str, object]:
                name, audio = clips[i % len(clips)]
                return await simulate_call(targets[i % 2], audio, realtime=True, hold_timeout=40.0)

            *results, _ = await asyncio.gather(*(one(i) for i in range(callers)), kill())
            return list(results)

        promoted: list[float] = []

        def watch() -> None:  # when the sentinels name a new primary, measured while the callers talk
            while not promoted:
                try:
                    if killed and cluster.primary_port() != old_port:
                        promoted.append(time.monotonic())
                except redis.RedisError:
                    pass
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        results = asyncio.run(burst())
        ended = time.monotonic()
        wait_for(lambda: bool(promoted), timeout=30, what="a new primary")
        promoted_s = promoted[0] - killed[0]
        new = redis.Redis(port=cluster.primary_port(), decode_responses=True)
        sids = [str(r["call_sid"]) for r in results]

        def on_new_primary() -> bool:
            return all(new.hget(keys.call(s), "status") == "ended" and new.hget(keys.call(s), "queue") for s in sids)

        wait_for(on_new_primary, timeout=60, what="every call on the new primary")
        written_s = time.monotonic() - ended
        routed = set()
        for port in ports:
            requests = httpx.get(f"http://127.0.0.1:{port}/api/dry-run/requests", timeout=10,
                                 headers={"Authorization": "Bearer dev-supervisor-token"}).json()
            routed |= {r["call_sid"] for r in requests}
        problems = []
        for sid in sids:
            kinds = [fields.get("type") for _, fields in new.xrange(keys.timeline(sid))]
            if kinds.count("decision") + kinds.count("keypad") != 1 or kinds.count("ended") != 1:
                problems.append({"call": sid, "timeline": kinds})
        lat = np.array([float(new.hget(keys.call(s), "decision_latency_ms") or "nan") for s in sids])
        lat = lat[~np.isnan(lat)]
        new.close()
        return {"fault": "redis primary SIGKILL", "callers": callers, "routed": len(routed & set(sids)),
                "decision_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
                "decision_p95_ms": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
                "new_primary_after_s": round(promoted_s, 2), "burst_s": round(ended - killed[0] + 3.0, 1),
                "records_on_new_primary_after_burst_s": round(written_s, 2),
                "lost_or_doubled": problems}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        cluster.stop()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    """Run the drill and print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--callers", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = drill(_clips(args.data), args.callers, Path(tmp))
    print(json.dumps({"benchmark": "failover_drill", "cpu_cores": os.cpu_count(), **figures}))


if __name__ == "__main__":
    main()
