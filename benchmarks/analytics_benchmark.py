"""Analytics over 10,000 stored calls: how long the aggregate and the CSV export take.

Seeds a fresh embedded redis-server with realistic call summaries (the hash
fields router.store writes), then times the dashboard's read path. One JSON line.

    python -m benchmarks.analytics_benchmark --calls 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

from dashboards.state import ANALYTICS_FIELDS, analytics_of, calls_csv, summaries_between
from emoroute.redis_server import EmbeddedRedis
from router import keys
from router.store import CallStore, Outbox

QUEUES = ("retention", "sales", "general")
LABELS = ("angry", "happy", "neutral", "sad")


async def _run(n: int, url: str) -> dict[str, float]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    store = CallStore(client, outbox=Outbox(None), retention_s=30 * 86400, seconds_per_point=60, queues=QUEUES)
    rng = np.random.default_rng(0)
    now = time.time()
    async with client.pipeline(transaction=False) as pipe:
        for i in range(n):
            sid = f"CA{i:032d}"
            started = now - rng.uniform(0, 7 * 86400)
            enq = started + rng.uniform(3, 8)
            pipe.hset(keys.call(sid), mapping={
                "call_sid": sid, "caller": f"+1555{i:07d}", "started_at": started, "ended_at": enq + 300,
                "status": "ended", "queue": str(rng.choice(QUEUES)), "priority": int(rng.integers(1, 11)),
                "reason": "angry tone (P=0.81)", "rule": "anger", "first_emotion": str(rng.choice(LABELS)),
                "emotion": str(rng.choice(LABELS)), "first_valence": round(float(rng.uniform(-1, 1)), 3),
                "last_valence": round(float(rng.uniform(-1, 1)), 3), "enqueued_at": enq,
                "picked_at": enq + rng.uniform(5, 200), "escalated": int(rng.random() < 0.2)})
            pipe.zadd(keys.calls_index(), {sid: started})
        await pipe.execute()
    t0 = time.perf_counter()
    rows = await summaries_between(store, now - 8 * 86400, now, ANALYTICS_FIELDS)
    t1 = time.perf_counter()
    figures = analytics_of(rows, list(QUEUES))
    t2 = time.perf_counter()
    csv = calls_csv(await summaries_between(store, now - 8 * 86400, now))
    t3 = time.perf_counter()
    await client.aclose()
    return {"calls": figures["calls"], "read_ms": round((t1 - t0) * 1000, 1),
            "aggregate_ms": round((t2 - t1) * 1000, 1), "csv_with_full_read_ms": round((t3 - t2) * 1000, 1),
            "total_ms": round((t3 - t0) * 1000, 1), "csv_bytes": len(csv)}


def main() -> None:
    """Seed, time, print."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), persist=False)
        server.start()
        try:
            result = asyncio.run(_run(args.calls, server.url))
        finally:
            server.stop()
    print(json.dumps({"benchmark": "analytics", **result}))


if __name__ == "__main__":
    main()
