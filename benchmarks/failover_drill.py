"""Failure drill: a worker, a web process, then the Redis primary killed during a burst of callers.

Real processes throughout. A primary, a replica and three Redis Sentinels (quorum 2, down-after
1 s); two ``emoroute serve`` web processes and three ``emoroute worker``s that follow the primary through the sentinels
(``REDIS_SENTINELS``, transcription as jobs on Redis Streams), started afresh for each fault.
Callers dial over six seconds and stream real speech at real-time pace, split between the web
processes (a dead one gets no new calls, as behind a health-checked load balancer); three seconds
in, the fault's process gets SIGKILL. Reported per fault: calls routed (their record has a queue),
the callers cut with a killed web process (and whether the other process ended their calls),
those who dialled after the kill and were routed, decision latency p50/p95 as the servers measured
it, the time from the kill until the sentinels name a new primary (watched while the callers talk),
how long after the burst every call had ended in Redis, calls without a transcript, and what was
lost or doubled (each call's timeline must hold at most one decision and exactly one end).

    python -m benchmarks.failover_drill --data ../shared/data --callers 50 [--fault worker|web|redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import redis
from twilio.request_validator import RequestValidator

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


FAULTS = ("worker", "web", "redis")
KILL_AT_S = 3.0
SPREAD_S = 6.0  # callers dial over this many seconds: some before the fault, some after


def drill(fault: str, clips: list, callers: int, tmp: Path) -> dict[str, object]:
    """Run one fault (a worker, a web process or the Redis primary killed) once; return its figures."""
    cluster = SentinelSet(tmp)
    cluster.start()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EMOROUTE_")},
           "REDIS_SENTINELS": cluster.spec, "EMOROUTE_ENVIRONMENT": "development", "EMOROUTE_ASR_MODE": "redis",
           "EMOROUTE_ASR_CLAIM_IDLE_MS": "1500", "EMOROUTE_PROCESS_LEASE_S": "2",
           # the load generator is one address streaming many calls: lift the per-address limits
           "EMOROUTE_MAX_FRAMES_PER_SECOND": "10000", "EMOROUTE_MAX_PENDING_STREAMS_PER_CLIENT": "1000",
           "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    ports = [free_port(), free_port()]
    webs = [_process(["serve", "--port", str(p)], {**env, "EMOROUTE_PUBLIC_URL": f"http://127.0.0.1:{p}",
                                                   "EMOROUTE_DATA_DIR": str(tmp / f"web-{p}")}, tmp / f"web-{p}.log")
            for p in ports]
    workers = [_process(["worker", "--id", f"drill-worker-{n}"], env, tmp / f"worker-{n}.log") for n in range(3)]
    try:
        for port in ports:
            wait_for(lambda port=port: _ready(port), timeout=240, what=f"web process on {port}")
        old_port = cluster.primary_port()
        targets = [SimTarget(url=f"http://127.0.0.1:{p}", public_url=f"http://127.0.0.1:{p}",
                             auth_token="dev-auth-token", api_token="dev-supervisor-token") for p in ports]
        victim = {"worker": workers[0], "web": webs[0], "redis": cluster.primary.process}[fault]
        killed: list[float] = []
        promoted: list[float] = []

        async def burst() -> list[dict[str, object]]:
            async def kill() -> None:
                await asyncio.sleep(KILL_AT_S)
                os.kill(victim.pid, signal.SIGKILL)  # type: ignore[union-attr]
                killed.append(time.monotonic())

            async def one(i: int) -> dict[str, object]:
                await asyncio.sleep(i * SPREAD_S / callers)
                started = time.monotonic()
                # a load balancer's health check: a dead web process gets no new calls
                target = targets[1] if fault == "web" and killed else targets[i % 2]
                caller = f"+1555010{i:04d}"
                try:
                    _, audio = clips[i % len(clips)]
                    summary = await asyncio.wait_for(
                        simulate_call(target, audio, realtime=True, hold_timeout=40.0, caller=caller), 180)
                    return {"caller": caller, "started": started, **summary}
                except Exception as exc:  # noqa: BLE001 - a caller on the killed process: its stream is cut
                    return {"caller": caller, "started": started, "cut": f"{type(exc).__name__}: {exc}"[:160]}

            *results, _ = await asyncio.gather(*(one(i) for i in range(callers)), kill())
            return list(results)

        def watch() -> None:  # when the sentinels name a new primary, measured while the callers talk
            while not promoted:
                try:
                    if killed and cluster.primary_port() != old_port:
                        promoted.append(time.monotonic())
                except redis.RedisError:
                    pass
                time.sleep(0.05)

        if fault == "redis":
            threading.Thread(target=watch, daemon=True).start()
        results = asyncio.run(burst())
        ended = time.monotonic()
        if fault == "redis":
            wait_for(lambda: bool(promoted), timeout=30, what="a new primary")
        r = redis.Redis(port=cluster.primary_port(), decode_responses=True)
        by_caller = {r.hget(keys.call(sid), "caller"): sid for sid in r.zrange(keys.calls_index(), 0, -1)}
        sids = {str(res["caller"]): by_caller.get(str(res["caller"])) for res in results}
        cut = [str(res["caller"]) for res in results if "cut" in res]

        def settled() -> bool:  # every call ended and, if it reached a decision, has its queue
            return all(sid and r.hget(keys.call(sid), "status") == "ended" for c, sid in sids.items() if sid)

        wait_for(settled, timeout=90, what="every call ended in Redis")
        settled_s = time.monotonic() - ended
        after_kill = [str(res["caller"]) for res in results if float(res["started"]) > killed[0]]  # type: ignore[arg-type]
        problems, untranscribed = [], []
        unstarted = 0
        for caller, sid in sids.items():
            if sid is None:
                if caller in cut:
                    unstarted += 1  # cut before its stream started: nothing was stored yet
                else:
                    problems.append({"caller": caller, "problem": "no record"})
                continue
            kinds = [fields.get("type") for _, fields in r.xrange(keys.timeline(sid))]
            routed = kinds.count("decision") + kinds.count("keypad")
            if routed > 1 or kinds.count("ended") != 1 or (routed == 0 and caller not in cut):
                problems.append({"call": sid, "timeline": kinds})
            if caller not in cut and not r.hget(keys.call(sid), "transcript"):
                untranscribed.append(sid)
        lat = np.array([float(r.hget(keys.call(sid), "decision_latency_ms") or "nan") for sid in sids.values() if sid])
        lat = lat[~np.isnan(lat)]
        figures: dict[str, object] = {
            "fault": {"worker": "one of three workers SIGKILL", "web": "one of two web processes SIGKILL",
                      "redis": "redis primary SIGKILL"}[fault],
            "callers": callers, "routed": sum(1 for sid in sids.values() if sid and r.hget(keys.call(sid), "queue")),
            "cut_with_their_process": len(cut), "cut_how": sorted({str(res["cut"]) for res in results if "cut" in res}),
            "dialled_after_the_kill": len(after_kill),
            "routed_after_the_kill": sum(1 for c in after_kill if sids[c] and r.hget(keys.call(sids[c]), "queue")),
            "decision_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "decision_p95_ms": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
            "every_call_ended_after_burst_s": round(settled_s, 2),
            "without_transcript": untranscribed,
            "without_transcript_why": {sid: _why_untranscribed(r, sid, tmp) for sid in untranscribed},
            "asr_jobs_dropped_past_deadline": int(r.get(keys.asr_dropped()) or 0),
            "lost_or_doubled": problems}
        if fault == "redis":
            figures["new_primary_after_s"] = round(promoted[0] - killed[0], 2)
        if fault == "web":
            # what Twilio does for a caller whose stream was cut before routing: the <Redirect> to
            # /twilio/fallback, which the load balancer sends to the surviving process
            figures["cut_before_their_stream_started"] = unstarted
            figures["cut_callers_offered_the_keypad_menu_by_the_other"] = sum(
                1 for c in cut if "<Gather" in _fallback(targets[1], sids[c] or "CA" + uuid.uuid4().hex))
            reasons = [r.hget(keys.call(sids[c]), "end_reason") for c in cut if sids[c]]
            figures["cut_calls_ended_by_the_other_process"] = sum(1 for x in reasons
                                                                  if x and x.startswith("owner_lost"))
        r.close()
        return figures
    finally:
        for proc in [*webs, *workers]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*webs, *workers]:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        cluster.stop()


def _why_untranscribed(r: redis.Redis, sid: str, tmp: Path) -> dict[str, object]:
    """Say what became of a call's transcription: its utterances, and what the processes logged for it."""
    timeline = [fields for _, fields in r.xrange(keys.timeline(sid))]
    said = [line[11:23] + " " + line.split(" ", 3)[-1][:160] for log in sorted(tmp.glob("*.log"))
            for line in log.read_text(errors="replace").splitlines() if sid in line and " - \"GET " not in line]
    return {"utterances": sum(1 for f in timeline if f.get("kind") == "utterance"),
            "transcript_entries": sum(1 for f in timeline if f.get("type") == "transcript"),
            "logged": said}


def _fallback(target: SimTarget, call_sid: str) -> str:
    """Post Twilio's signed fallback webhook for ``call_sid``; return the TwiML answer."""
    form = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "CallStatus": "in-progress"}
    signature = RequestValidator(target.auth_token).compute_signature(target.public_url + "/twilio/fallback", form)
    return httpx.post(target.url + "/twilio/fallback", data=form, headers={"X-Twilio-Signature": signature},
                      timeout=10).text


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    """Run the drill and print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--callers", type=int, default=50)
    ap.add_argument("--fault", choices=[*FAULTS, "all"], default="all")
    ap.add_argument("--keep-logs", type=Path, help="copy every process's log here")
    args = ap.parse_args()
    clips = _clips(args.data)
    for fault in FAULTS if args.fault == "all" else (args.fault,):
        with tempfile.TemporaryDirectory() as tmp:
            figures = drill(fault, clips, args.callers, Path(tmp))
            if args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("*.log"):
                    shutil.copy(log, args.keep_logs / f"{fault}-{log.name}")
        print(json.dumps({"benchmark": "failover_drill", "cpu_cores": os.cpu_count(), **figures}), flush=True)


if __name__ == "__main__":
    main()
