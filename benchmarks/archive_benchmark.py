"""Archive lag: how long a finished call takes to reach the history store, with calls ending at a steady rate.

A fresh embedded redis-server; the real call store writes each call as the live path does
(start, two phases, three readings with transcripts, a decision, a pickup, the end: 10 timeline
entries), ``--rate`` calls ending per second for ``--seconds``; one archiver (as inside
``emoroute serve``) moves them to the store: DuckDB (a file) or PostgreSQL (``--postgres URL``).
Lag per call: the store's ``archived_at`` minus the moment the call's end was written. Also the
Redis memory a finished call holds while the live views may need it (``MEMORY USAGE`` of its
hash and timeline), what each call still holds once the archiver's live window (``--live-seconds``;
``EMOROUTE_LIVE_HOURS`` in the product) has passed (Redis's ``used_memory`` after the window,
less before the calls, per call: index entries only), and whether every call arrived once. One
JSON line.

    python -m benchmarks.archive_benchmark --rate 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

from emoroute.redis_server import EmbeddedRedis
from router import keys
from router.archive import Archiver
from router.history import HistoryStore
from router.policy import Decision
from router.store import CallStore, Outbox, ReadingRecord

QUEUES = ("retention", "sales", "general")
PROBS = {"angry": 0.2, "happy": 0.1, "neutral": 0.6, "sad": 0.1}


async def _one_call(store: CallStore, ended: dict[str, float]) -> str:
    sid = "CA" + uuid.uuid4().hex
    now = time.time()
    await store.call_started(call_sid=sid, stream_sid="MZ" + sid[2:], caller="+15550001111", started_at=now - 120,
                             caller_hash=f"bench-{int(sid[-4:], 16) % 300}")  # 300 callers, some calling again
    await store.phase_changed(call_sid=sid, phase="question", t=1.0)
    for i in range(3):
        await store.add_reading(call_sid=sid, reading=ReadingRecord(
            t=2.0 + i, kind="utterance", start_s=1.0 + i, end_s=2.0 + i, label="neutral", probs=PROBS, arousal=0.1,
            valence=0.1, model="bench", transcript="I would like to check my balance please", sentiment=0.2,
            intents=(), phase="question"))
    await store.record_decision(call_sid=sid, decision=Decision("general", 3, "neutral tone", "tone"), t=5.0,
                                arrival=now - 115, latency_ms=900.0)
    await store.phase_changed(call_sid=sid, phase="agent", t=30.0)
    await store.mark_with_agent(call_sid=sid, agent_id="ana", source="api")
    await store.call_ended(call_sid=sid, t=120.0, reason="completed")
    ended[sid] = time.time()
    return sid


async def _run(args: argparse.Namespace, redis_url: str, history_url: str) -> dict[str, object]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = CallStore(client, outbox=Outbox(None), retention_s=30 * 86400, seconds_per_point=60, queues=QUEUES)
    history = HistoryStore(history_url)
    history.migrate()
    archiver = Archiver(client, history, consumer="bench", block_ms=200, live_s=args.live_seconds)
    await archiver.ensure_group()
    await client.memory_purge()
    before = int((await client.info("memory"))["used_memory"])
    task = asyncio.create_task(archiver.run())
    ended: dict[str, float] = {}
    total = int(args.rate * args.seconds)
    started = time.monotonic()
    calls = []
    for i in range(total):  # a steady rate: call i ends at i / rate seconds
        await asyncio.sleep(max(0.0, started + i / args.rate - time.monotonic()))
        calls.append(asyncio.create_task(_one_call(store, ended)))
    sids = await asyncio.gather(*calls)
    deadline = time.monotonic() + 120
    while archiver.archived < total and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a counter
        await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    rows = dict(await asyncio.to_thread(history.query, "SELECT call_sid, archived_at FROM calls"))
    lag = np.array([rows[s] - ended[s] for s in sids if s in rows])
    events = await asyncio.to_thread(history.query, "SELECT count(*) FROM call_events")
    # the last calls, archived a moment ago: still inside the live window
    memory = [int(await client.memory_usage(keys.call(s)) or 0) + int(await client.memory_usage(keys.timeline(s)) or 0)
              for s in sids[-100:]]
    await asyncio.sleep(args.live_seconds + 1.0)
    while await client.exists(*(keys.call(s) for s in sids[-50:])):  # noqa: ASYNC110 - Redis expires them
        await asyncio.sleep(0.5)
    await client.memory_purge()
    after = int((await client.info("memory"))["used_memory"])
    left = [k for s in sids[:200] for k in (keys.call(s), keys.timeline(s), keys.settled(s)) if await client.exists(k)]
    history.close()
    await client.aclose()
    return {"calls": total, "archived_once": len(rows) == total and len(set(rows)) == total,
            "timeline_rows": int(events[0][0]), "archive_lag_p50_s": round(float(np.percentile(lag, 50)), 3),
            "archive_lag_p95_s": round(float(np.percentile(lag, 95)), 3),
            "archive_lag_max_s": round(float(lag.max()), 3),
            "redis_bytes_per_finished_call_while_live": int(np.mean(memory)),
            "redis_bytes_per_archived_call_after_live_window": round((after - before) / total),
            "keys_left_after_live_window": len(left)}


def main() -> None:
    """Run once and print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=float, default=50.0, help="calls ending per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--postgres", help="postgresql://... to archive into (default: a DuckDB file)")
    ap.add_argument("--live-seconds", type=float, default=5.0,
                    help="how long Redis keeps an archived call (the product's default is 2 hours)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", persist=True)
        server.start()
        try:
            history_url = args.postgres or f"duckdb://{Path(tmp) / 'history.duckdb'}"
            figures = asyncio.run(_run(args, server.url, history_url))
        finally:
            server.stop()
    print(json.dumps({"benchmark": "archive_lag", "engine": "postgresql" if args.postgres else "duckdb",
                      "rate_per_s": args.rate, "cpu_cores": os.cpu_count(), **figures,
                      "target": "archive lag p95 <= 5 s at 50 calls ending per second; nothing lost or doubled; "
                                "<= 1 KB of Redis per archived call"}))


if __name__ == "__main__":
    main()
