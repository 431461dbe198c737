"""Redis fail-over with real processes: a primary, a replica and three Redis Sentinels (issue #32).

The primary is killed (SIGKILL) while callers talk; every call must be routed, the sentinels
promote the replica, every process follows it, and what was written while there was no primary
reaches the new one from the outbox, once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from emoroute.redis_server import EmbeddedRedis, free_port, redis_server_binary
from router import keys
from tests.helpers import new_call_sid, stream_call, wait_for

pytestmark = pytest.mark.timeout(240)
MASTER = "mymaster"


class SentinelSet:
    """A primary, one replica and three sentinels (quorum 2), each a real redis-server process."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.primary = EmbeddedRedis(tmp / "primary", persist=True)
        self.replica = EmbeddedRedis(tmp / "replica", persist=True)
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
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
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def primary_port(self) -> int:
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=1) as s:
            return int(s.sentinel_get_master_addr_by_name(MASTER)[1])

    def stop(self) -> None:
        for proc in self.sentinels:
            proc.terminate()
        for proc in self.sentinels:
            proc.wait(timeout=10)
        self.replica.stop()
        self.primary.stop()


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    cluster = SentinelSet(tmp_path)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def test_the_primary_killed_while_callers_talk_loses_and_doubles_nothing(server_factory, sentinel_set,
                                                                             neutral_audio, angry_audio):
    thread, server = server_factory(None, redis_sentinels=sentinel_set.spec, redis_sentinel_master=MASTER)
    ws = server.url.replace("http://", "ws://") + "/twilio/stream"
    old_port = sentinel_set.primary_port()
    with thread:
        before = [await stream_call(ws, neutral_audio)]  # the primary works, through the sentinels
        killed_at: list[float] = []

        async def kill_soon() -> None:
            await asyncio.sleep(1.0)  # the callers are talking
            os.kill(sentinel_set.primary.process.pid, signal.SIGKILL)
            killed_at.append(time.monotonic())

        sids = [new_call_sid() for _ in range(6)]
        audio = [angry_audio if i % 2 else neutral_audio for i in range(6)]
        await asyncio.gather(kill_soon(), *(stream_call(ws, a, call_sid=s, realtime=True, hold_until=lambda x: any(
            q.call_sid == x for q in list(server.actions.requests)), max_hold_seconds=30)
            for s, a in zip(sids, audio, strict=True)))
        # every caller was routed (Twilio was told where), primary or not
        routed = {q.call_sid for q in list(server.actions.requests)}
        assert set(sids) <= routed, set(sids) - routed

        wait_for(lambda: sentinel_set.primary_port() != old_port, timeout=20, what="the replica promoted")
        new = redis.Redis(port=sentinel_set.primary_port(), decode_responses=True)

        def all_written() -> bool:
            return all(new.hget(keys.call(s), "status") == "ended" and new.hget(keys.call(s), "queue")
                       for s in [*before, *sids])

        wait_for(all_written, timeout=20, what="every call's record on the new primary")
        recovered_s = time.monotonic() - killed_at[0]
        for sid in [*before, *sids]:
            kinds = [fields.get("type") for _, fields in new.xrange(keys.timeline(sid))]
            assert kinds.count("decision") + kinds.count("keypad") == 1, (sid, kinds)  # once: none lost, none doubled
            assert kinds.count("ended") == 1 and kinds[0] == "started", (sid, kinds)
        assert recovered_s < 10 + 20, recovered_s  # measured by benchmarks/failover_drill.py; here: it recovers
        new.close()
