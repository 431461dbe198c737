"""Scale-out figures: worker throughput and scale efficiency, bursts, the Redis hop, Redis's own headroom.

1. Workers: the same transcription jobs (held-out RAVDESS utterances, phone band) pushed onto the
   urgent stream, done by one ``emoroute worker`` pinned to one core, then by two pinned to a core
   each with twice the jobs: jobs per second, audio seconds per core-second, and the scale
   efficiency (two workers' throughput over twice one's).
2. Bursts: 10 and 50 callers starting together (real-time pace), against a single process
   (transcription in-process, as today) and against one web process with two workers
   (EMOROUTE_ASR_MODE=redis), on the same two cores: p50 / p95 decision latency, as the server
   measures it (from the frame that closed the utterance to the redirect).
3. The Redis hop: one caller at a time, in-process against through workers: the median extra latency.
4. ``redis-benchmark`` (Debian's redis-tools) against the same redis-server: the XADD and SET/GET
   rates the capacity model in docs/OPERATIONS.md assumes.

    python -m benchmarks.scale_benchmark --data ../shared/data
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import redis

from audio_models.g711 import telephone_round_trip
from benchmarks.common import served
from benchmarks.latency_benchmark import _clips, _run
from emoroute.redis_server import EmbeddedRedis
from router import keys
from router.asr_jobs import pcm16

WORKER_NICE = 0  # --worker-nice: workers below the web process on a shared box


def _worker(redis_url: str, name: str, core: int | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": redis_url, "EMOROUTE_ASR_CLAIM_IDLE_MS": "60000"}
    command = [sys.executable, "-m", "emoroute.cli", "worker", "--id", name]
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    if WORKER_NICE:
        command = ["nice", "-n", str(WORKER_NICE), *command]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_workers(client: redis.Redis, names: list[str]) -> None:
    deadline = time.monotonic() + 120
    while not all(client.exists(keys.worker(n)) for n in names):
        if time.monotonic() > deadline:
            raise SystemExit("workers did not start")
        time.sleep(0.2)


def throughput(redis_url: str, waves: list[np.ndarray], workers: int) -> dict[str, float]:
    """Push len(waves) * workers jobs, let ``workers`` pinned workers do them; return the rates."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    names = [f"bench-{workers}-{i}" for i in range(workers)]
    procs = [_worker(redis_url, n, core=i % (os.cpu_count() or 1)) for i, n in enumerate(names)]
    try:
        _wait_workers(client, names)
        reply = f"{keys.PREFIX}:asr:results:bench-{uuid.uuid4().hex[:6]}"
        jobs = waves * workers
        started = time.perf_counter()
        for wave in jobs:
            client.xadd(keys.asr_jobs("urgent"), {"id": uuid.uuid4().hex, "reply": reply,
                                                  "deadline": f"{time.time() + 3600:.3f}", "audio": pcm16(wave)})
        while client.xlen(reply) < len(jobs):
            time.sleep(0.02)
        wall = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        client.close()
    audio_s = sum(len(w) for w in jobs) / 16000
    return {"workers": workers, "jobs": len(jobs), "wall_s": round(wall, 2), "jobs_per_s": round(len(jobs) / wall, 3),
            "audio_s_per_core_s": round(audio_s / (wall * workers), 2)}


def burst(clips: list, callers: int, env: dict[str, str], workers: list[str] | None, redis_url: str | None) -> dict:
    """Run ``callers`` calls at once against one server (with ``workers``); return the latency figures."""
    procs = [_worker(redis_url, n, core=None) for n in workers or []] if redis_url else []
    try:
        if procs:
            client = redis.Redis.from_url(redis_url or "")
            _wait_workers(client, workers or [])
            client.close()
        with served(env) as target:
            results = asyncio.run(_run(target, clips, callers, callers, True, 0.0))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    lat = np.array([float(r["decision_latency_ms"]) for r in results if r.get("decision_latency_ms")])
    return {"callers": callers, "routed": sum(1 for r in results if r.get("queue")),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p95_ms": round(float(np.percentile(lat, 95)), 1),
            "latencies_ms": [round(float(x), 1) for x in lat]}


def redis_benchmark(redis_url: str) -> dict[str, float] | str:
    """Return redis-benchmark's requests per second for the commands EmoRoute leans on."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return "redis-benchmark not installed (apt-get install redis-tools)"
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    out = subprocess.run([binary, "-p", port, "-q", "-n", "100000", "-c", "50", "-t", "set,get"],
                         capture_output=True, text=True, timeout=300).stdout
    # a job-sized XADD (32 KB of audio, a 1 s utterance at 16 kHz 16-bit)
    out += subprocess.run([binary, "-p", port, "-q", "-n", "20000", "-c", "50",
                           "XADD", "bench:jobs", "MAXLEN", "~", "1000", "*", "audio", "x" * 32000],
                          capture_output=True, text=True, timeout=300).stdout
    return {m.group(1).split()[0].lower(): float(m.group(2))
            for m in re.finditer(r"^([\w ~*:_\\\"-]+?): ([\d.]+) requests per second", out.replace("\r", "\n"), re.M)}


def main() -> None:
    """Run every part and print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--jobs", type=int, default=32, help="jobs per worker in the throughput runs")
    ap.add_argument("--single-calls", type=int, default=12, help="one-at-a-time calls for the Redis hop")
    ap.add_argument("--worker-nice", type=int, default=0,
                    help="run the workers at this nice level (web processes first when they share cores)")
    ap.add_argument("--bursts-only", action="store_true", help="only the 10- and 50-caller bursts")
    args = ap.parse_args()
    global WORKER_NICE
    WORKER_NICE = args.worker_nice
    clips = _clips(args.data)
    waves = [telephone_round_trip(a) for _, a in clips]
    waves = (waves * (args.jobs // len(waves) + 1))[: args.jobs]
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", persist=False)
        url = server.start()
        try:
            one, two = ({}, {}) if args.bursts_only else (throughput(url, waves, 1), throughput(url, waves, 2))
            local_env = {"EMOROUTE_ASR_MODE": "local"}
            remote_env = {"EMOROUTE_ASR_MODE": "redis", "REDIS_URL": url}
            bursts: dict[str, dict] = {}
            for callers in (10, 50):
                bursts[f"single_process_{callers}"] = burst(clips, callers, local_env, None, None)
                redis.Redis.from_url(url).flushall()
                bursts[f"web_plus_2_workers_{callers}"] = burst(clips, callers, remote_env, ["w1", "w2"], url)
            single: dict[str, float] = {"local": 0.0, "redis": 0.0}
            for mode, env, workers in () if args.bursts_only else (("local", local_env, None),
                                                                   ("redis", remote_env, ["w1"])):
                redis.Redis.from_url(url).flushall()
                procs = [_worker(url, n, core=None) for n in workers or []]
                try:
                    if procs:
                        _wait_workers(redis.Redis.from_url(url), workers or [])
                    with served(env) as target:
                        results = asyncio.run(_run(target, clips[: args.single_calls], args.single_calls, 1, True,
                                                   0.0))
                finally:
                    for proc in procs:
                        proc.terminate()
                        proc.wait(timeout=30)
                single[mode] = float(np.median([float(r["decision_latency_ms"]) for r in results
                                                if r.get("decision_latency_ms")]))
            rb = {} if args.bursts_only else redis_benchmark(url)
        finally:
            server.stop()
    print(json.dumps({
        "benchmark": "scale_out", "cpu_cores": os.cpu_count(),
        "worker_nice": args.worker_nice,
        "workers": {"one": one, "two_pinned": two,
                    "scale_efficiency": round(two["jobs_per_s"] / (2 * one["jobs_per_s"]), 3) if one else None},
        "bursts": {k: {kk: vv for kk, vv in v.items() if kk != "latencies_ms"} for k, v in bursts.items()},
        "single_call_median_ms": {k: round(v, 1) for k, v in single.items()},
        "redis_hop_extra_median_ms": round(single["redis"] - single["local"], 1),
        "redis_benchmark_rps": rb,
    }))


if __name__ == "__main__":
    main()
