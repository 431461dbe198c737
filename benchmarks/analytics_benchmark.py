"""Analytics over 100,000 stored calls: how long the dashboard's figures and the CSV export take.

Seeds a fresh embedded redis-server with realistic call summaries (the hash fields router.store
and the live coordinator write: phases, topics, keypad, escalation, caller hash, opt-outs, CSAT),
then times every figure counted from the calls (read, aggregate), the analytics endpoint's path
(``dashboards.rollup.period_figures``: closed hours from stored roll-ups) the first time (no
roll-up stored yet) and again, and the CSV export. One JSON line.

    python -m benchmarks.analytics_benchmark --calls 100000
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

from dashboards.insights import INSIGHT_FIELDS, insights_of, mark_repeats, repeat_index
from dashboards.rollup import period_figures
from dashboards.state import ANALYTICS_FIELDS, CSV_READ_FIELDS, analytics_of, csv_header, csv_rows, summaries_between
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
    topics = ("cancel", "billing_dispute", "complaint", "purchase", "upgrade", "")
    phase_names = ("greeting", "identification", "queue", "agent", "survey")
    for start in range(0, n, 10_000):
        async with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 10_000)):
                sid = f"CA{i:032d}"
                started = now - rng.uniform(0, 7 * 86400)
                enq = started + rng.uniform(3, 8)
                phases = {p: [int(rng.integers(1, 6)), round(float(rng.uniform(0, 1)), 3),
                              round(float(rng.uniform(-1, 1)), 3)] for p in phase_names if rng.random() < 0.8}
                fields = {
                    "call_sid": sid, "caller": f"+1555{i % 40_000:07d}", "started_at": started,
                    "ended_at": enq + 300, "status": "ended", "queue": str(rng.choice(QUEUES)),
                    "priority": int(rng.integers(1, 11)), "reason": "angry tone (P=0.81)", "rule": "anger",
                    "first_emotion": str(rng.choice(LABELS)), "emotion": str(rng.choice(LABELS)),
                    "first_valence": round(float(rng.uniform(-1, 1)), 3),
                    "last_valence": round(float(rng.uniform(-1, 1)), 3), "enqueued_at": enq,
                    "picked_at": enq + rng.uniform(5, 200), "escalated": int(rng.random() < 0.2),
                    "intents": str(rng.choice(topics)), "phase_stats": json.dumps(phases),
                    "peak_anger": round(float(rng.uniform(0, 1)), 3), "caller_hash": f"h{i % 40_000:019d}"}
                if rng.random() < 0.1:
                    fields["anger_rose"] = 1
                if rng.random() < 0.05:
                    fields["asked_manager"] = 1
                if rng.random() < 0.3:
                    fields["csat"] = int(rng.integers(1, 6))
                if rng.random() < 0.02:
                    fields["opted_out"] = 1
                pipe.hset(keys.call(sid), mapping=fields)
                pipe.zadd(keys.calls_index(), {sid: started})
            await pipe.execute()
    lo, hi, days = now - 8 * 86400, now, 7.0
    wanted = tuple(dict.fromkeys((*ANALYTICS_FIELDS, *INSIGHT_FIELDS)))
    t0 = time.perf_counter()
    rows = await summaries_between(store, lo, hi, wanted)
    history = await summaries_between(store, lo - days * 86400, lo, ("caller_hash", "started_at"))
    history += [{"caller_hash": r.get("caller_hash", ""), "started_at": r.get("started_at", "")} for r in rows]
    t1 = time.perf_counter()
    figures = analytics_of(rows, list(QUEUES))
    more = insights_of(rows, list(QUEUES), key_intents={"1": "cancel"}, history=history, repeat_days=days)
    t2 = time.perf_counter()
    # the CSV export as the endpoint streams it: the callers' history, then 5,000 calls at a time
    index = repeat_index(history)
    parts = [csv_header()]
    async for batch in store.stored.summary_batches(await store.stored.call_sids_between(lo, hi), CSV_READ_FIELDS):
        mark_repeats(batch, index, days)
        parts.append(csv_rows(batch))
    csv = "".join(parts)
    t3 = time.perf_counter()
    settle_s = 2 * 3600  # the endpoint's: the maximum call length (1 h) and the margin (1 h)
    timed = []
    for _ in range(2):  # the first request stores the closed hours' roll-ups, the second reads them
        t = time.perf_counter()
        endpoint = await period_figures(store, lo, hi, queues=list(QUEUES), key_intents={"1": "cancel"},
                                        repeat_days=days, settle_s=settle_s)
        timed.append(round((time.perf_counter() - t) * 1000, 1))
    direct = {**figures, **more}
    assert all(endpoint[k] == direct[k] for k in direct), "roll-ups changed a figure"
    await client.aclose()
    return {"calls": figures["calls"], "repeat_calls": more["repeat_callers"]["repeat_calls"],
            "hurts_most": more["phases"]["hurts_most"], "read_ms": round((t1 - t0) * 1000, 1),
            "aggregate_ms": round((t2 - t1) * 1000, 1), "csv_streamed_ms": round((t3 - t2) * 1000, 1),
            "total_ms": round((t3 - t0) * 1000, 1), "csv_bytes": len(csv),
            "endpoint_first_ms": timed[0], "endpoint_rollups_stored_ms": timed[1]}


def main() -> None:
    """Seed, time, print."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=100_000)
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
