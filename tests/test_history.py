"""The history store of finished calls (issue #31): the hand-off stream, the archiver, DuckDB and PostgreSQL.

Calls are written by the real call store into a real redis-server, archived into DuckDB (a file)
and into a real PostgreSQL server the tests start, erased and purged there; an archiver process
killed with SIGKILL mid-batch and a PostgreSQL server stopped as if it crashed lose nothing and
double nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from router import keys
from router.archive import GROUP, Archiver
from router.history import HistoryStore
from router.phases import caller_hash
from router.policy import Decision
from router.store import CallStore, Outbox, ReadingRecord
from tests.conftest import REPO
from tests.helpers import new_call_sid, wait_for
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.timeout(300)
QUEUES = ("retention", "sales", "general")
SECRET = "history-test-secret"


@pytest.fixture(params=["duckdb", "postgresql"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryStore]:
    if request.param == "duckdb":
        store = HistoryStore(f"duckdb://{tmp_path / 'history.duckdb'}")
    else:
        pg: PostgresServer = request.getfixturevalue("postgres")
        store = HistoryStore(pg.url)
        store.migrate()
        store.query("SELECT 1")
        with store._transaction() as cur:  # each test starts from empty tables
            cur.execute("DROP VIEW IF EXISTS readings, transcripts, decisions, phases, pickups, surveys")
            cur.execute("DROP TABLE IF EXISTS calls, call_events, call_topics, analytics_days, schema_version")
    assert store.migrate() == 0 and store.migrate() == 2  # created, then found at version 2
    yield store
    store.close()


def make_store(url: str) -> CallStore:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    return CallStore(client, outbox=Outbox(None), retention_s=3600, seconds_per_point=60, queues=QUEUES)


async def finished_call(store: CallStore, *, caller: str = "+15550001111", csat: str | None = "4") -> str:
    """One call as the live path writes it: started, heard, routed, taken, ended, surveyed."""
    sid = new_call_sid()
    now = time.time()
    await store.call_started(call_sid=sid, stream_sid="MZ" + sid[2:], caller=caller, started_at=now - 30,
                             caller_hash=caller_hash(SECRET, caller))
    await store.phase_changed(call_sid=sid, phase="question", t=1.0)
    probs = {"angry": 0.7, "happy": 0.1, "neutral": 0.1, "sad": 0.1}
    await store.add_reading(call_sid=sid, reading=ReadingRecord(
        t=3.0, kind="utterance", start_s=1.0, end_s=3.0, label="angry", probs=probs, arousal=0.6, valence=-0.5,
        model="test@1", transcript="I want to cancel my account", sentiment=-0.4, intents=("cancel",),
        phase="question"))
    await store.record_decision(call_sid=sid, decision=Decision("retention", 8, "asked to cancel", "intent"),
                                t=3.2, arrival=now - 27, latency_ms=210.0)
    await store.mark_with_agent(call_sid=sid, agent_id="ana", source="api")
    await store.call_ended(call_sid=sid, t=30.0, reason="completed")
    if csat:
        await store.mark(call_sid=sid, fields={"csat": csat}, entry={"type": "survey", "score": int(csat)})
        await store.hand_off(sid)
    return sid


async def test_a_finished_call_is_archived_once_with_its_timeline_and_erased_on_both_engines(redis_url, history):
    store = make_store(redis_url)
    archiver = Archiver(store.redis, history, consumer="a1")
    await archiver.ensure_group()
    sid = await finished_call(store)
    other = await finished_call(store, caller="+15550002222", csat=None)
    # the end and the survey both handed the first call over: it is written twice, kept once
    assert await archiver.run_once(block_ms=100) == 2
    assert history.query("SELECT count(*) FROM calls") == [(2,)]
    row = history.call(sid)
    assert row is not None
    assert (row["queue"], row["priority"], row["agent"], row["csat"], row["first_emotion"]) == (
        "retention", 8, "ana", 4, "angry")
    assert row["caller_hash"] == caller_hash(SECRET, "+15550001111") and "+1555" not in row["summary"]
    redis_timeline = [{k: v for k, v in e.items() if k != "id"} for e in await store.get_timeline(sid)]
    archived = history.timeline(sid)
    assert [e["type"] for e in archived] == [e["type"] for e in redis_timeline]
    assert [e["type"] for e in archived] == ["started", "phase", "reading", "decision", "pickup", "ended", "survey"]
    # the views a BI tool reads
    assert history.query("SELECT label, phase FROM readings WHERE call_sid = ?", [sid]) == [("angry", "question")]
    assert history.query("SELECT transcript FROM transcripts WHERE call_sid = ?", [sid]) == [
        ("I want to cancel my account",)]
    assert history.query("SELECT queue, priority FROM decisions WHERE call_sid = ?", [sid]) == [("retention", 8)]
    assert history.query("SELECT count(*) FROM surveys") == [(1,)]
    # archived again (a replayed hand-off): still one copy of each row
    await store.hand_off(sid)
    assert await archiver.run_once(block_ms=100) == 1
    assert history.query("SELECT count(*) FROM call_events WHERE call_sid = ?", [sid]) == [(len(archived),)]
    pending = await store.redis.xpending(keys.archive(), GROUP)
    assert pending["pending"] == 0 and await store.redis.xlen(keys.archive()) == 0  # acknowledged and deleted
    # erasure by the caller's salted hash, and retention
    assert history.erase(caller_hashes=[caller_hash(SECRET, "+15550001111")]) == [sid]
    assert history.call(sid) is None and history.timeline(sid) == []
    assert history.purge(started_before=time.time()) == 1 and history.call(other) is None
    await store.redis.aclose()


async def test_a_call_erased_before_its_turn_is_not_archived(redis_url, tmp_path):
    store = make_store(redis_url)
    history = HistoryStore(f"duckdb://{tmp_path / 'h.duckdb'}")
    history.migrate()
    archiver = Archiver(store.redis, history, consumer="a1")
    await archiver.ensure_group()
    sid = await finished_call(store, csat=None)
    await store.erasure.erase_calls([sid])
    assert await archiver.run_once(block_ms=100) == 0
    assert history.call(sid) is None and await store.redis.xlen(keys.archive()) == 0
    history.close()
    await store.redis.aclose()


def _archiver_process(redis_url: str, history_url: str, tmp: Path, name: str, *extra: str) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EMOROUTE_")}, "REDIS_URL": redis_url,
           "EMOROUTE_HISTORY_URL": history_url, "PYTHONUNBUFFERED": "1"}
    with (tmp / f"{name}.log").open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "emoroute.cli", "archiver", "--id", name, *extra], cwd=REPO,
                                env=env, stdout=log, stderr=subprocess.STDOUT)


async def test_an_archiver_killed_mid_batch_and_postgres_restarted_lose_and_double_nothing(redis_url, postgres,
                                                                                        tmp_path):
    store = make_store(redis_url)
    history = postgres.empty_history()
    sids = [await finished_call(store, caller=f"+1555100{i:04d}", csat=None) for i in range(300)]
    r = redis.Redis.from_url(redis_url, decode_responses=True)

    def archived() -> int:
        try:
            return int(history.query("SELECT count(*) FROM calls")[0][0])
        except Exception:  # noqa: BLE001 - our own connection died with a restart: the next query reopens it
            return -1

    first = _archiver_process(redis_url, postgres.url, tmp_path, "first", "--batch", "5")
    second = None
    try:
        wait_for(lambda: archived() >= 20, timeout=120, what="the first archiver under way")
        os.kill(first.pid, signal.SIGKILL)  # it may hold a batch it has not acknowledged
        first.wait()
        second = _archiver_process(redis_url, postgres.url, tmp_path, "second", "--batch", "5",
                                   "--claim-idle-ms", "500")
        wait_for(lambda: archived() >= 60, timeout=120, what="the second archiver under way")
        postgres.restart("immediate")  # the store goes down mid-write as if it crashed, and comes back
        wait_for(lambda: archived() == len(sids), timeout=120, what="every call archived")
        wait_for(lambda: r.xlen(keys.archive()) == 0, timeout=30, what="the hand-off stream emptied")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    assert "the history store refused a batch" in (tmp_path / "second.log").read_text()  # it met the restart
    assert sorted(row[0] for row in history.query("SELECT call_sid FROM calls")) == sorted(sids)
    per_call = history.query("SELECT call_sid, count(*) FROM call_events GROUP BY call_sid")
    assert len(per_call) == len(sids) and {n for _, n in per_call} == {6}  # every timeline once, whole
    r.close()
    history.close()
    await store.redis.aclose()


async def test_redis_crashing_under_the_archiver_loses_and_doubles_nothing(postgres, tmp_path):
    """Redis killed with SIGKILL while an archiver process works through 200 calls, then started again."""
    from emoroute.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis", extra_args=("--appendfsync", "always"))
    url = server.start()
    store = make_store(url)
    store.archive = True
    history = postgres.empty_history()
    sids = [await finished_call(store, caller=f"+1555200{i:04d}", csat=None) for i in range(200)]
    await store.redis.aclose()

    def archived() -> int:
        return int(history.query("SELECT count(*) FROM calls")[0][0])

    proc = _archiver_process(url, postgres.url, tmp_path, "archiver", "--batch", "5")
    try:
        wait_for(lambda: archived() >= 30, timeout=120, what="the archiver under way")
        server.process.kill()  # type: ignore[union-attr]  # a crash: no shutdown, no last AOF rewrite
        server.process.wait()  # type: ignore[union-attr]
        server.process.stderr.close()  # type: ignore[union-attr]
        server.process = None
        time.sleep(2.0)  # the archiver meets a dead Redis
        server.start()
        wait_for(lambda: archived() == len(sids), timeout=120, what="every call archived after the restart")
        r = redis.Redis.from_url(url, decode_responses=True)
        # the batch whose acknowledgement the crash cut is taken again at once, not after the 30 s reclaim
        wait_for(lambda: r.xlen(keys.archive()) == 0, timeout=10, what="the hand-off stream emptied")
        r.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        server.stop()
    assert "Redis unavailable" in (tmp_path / "archiver.log").read_text()  # it met the crash
    assert sorted(row[0] for row in history.query("SELECT call_sid FROM calls")) == sorted(sids)
    per_call = history.query("SELECT call_sid, count(*) FROM call_events GROUP BY call_sid")
    assert len(per_call) == len(sids) and {n for _, n in per_call} == {6}
    topics = history.query("SELECT call_sid, count(*) FROM call_topics GROUP BY call_sid")
    assert len(topics) == len(sids) and {n for _, n in topics} == {1}  # "cancel", once
    history.close()


def test_a_store_down_at_start_is_opened_once_it_comes_up_and_the_waiting_calls_reach_it(server_factory, redis_url,
                                                                                          neutral_audio):
    import asyncio

    import httpx

    from tests.helpers import stream_call

    late = PostgresServer()  # not started: connections are refused
    thread, server = server_factory(redis_url, history_url=late.url, history_retry_seconds=0.5)
    try:
        with thread:
            analytics = f"{server.url}/dashboard/api/analytics"
            auth = {"Authorization": "Bearer dev-supervisor-token"}
            resp = httpx.get(analytics, headers=auth)
            assert resp.status_code == 503 and "history store is not open" in resp.text
            ws = server.url.replace("http://", "ws://") + "/twilio/stream"
            sid = asyncio.run(stream_call(ws, neutral_audio, caller="+15550004444"))  # routed all the same
            r = redis.Redis.from_url(redis_url, decode_responses=True)
            wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="the call's end")
            assert r.hget(keys.call(sid), "queue") in QUEUES
            r.close()
            late.start()
            services = server.app.state.services
            wait_for(lambda: services.history is not None, timeout=30, what="the store opened")
            wait_for(lambda: services.history.call(sid) is not None, timeout=30, what="the waiting call archived")
            assert httpx.get(analytics, headers=auth).status_code == 200
    finally:
        late.stop()


async def test_a_live_call_reaches_the_embedded_store_is_read_from_it_later_and_erased_there(
        live_server, neutral_audio):
    import asyncio

    import httpx

    from tests.helpers import stream_call

    services = live_server.app.state.services
    assert services.history is not None and services.history.engine == "duckdb"  # the default: a file, no setup
    ws = live_server.url.replace("http://", "ws://") + "/twilio/stream"
    sid = await stream_call(ws, neutral_audio, caller="+15550007777")

    async def archived() -> dict | None:
        return await asyncio.to_thread(services.history.call, sid)

    deadline = time.monotonic() + 30
    while (row := await archived()) is None or row["status"] != "ended":
        assert time.monotonic() < deadline, "the call never reached the history store"
        await asyncio.sleep(0.2)
    assert row["queue"] in QUEUES and row["caller_hash"]
    # once archived, Redis keeps the call for the live window only (EMOROUTE_LIVE_HOURS), not its retention
    r = redis.Redis.from_url(live_server.settings.redis_url, decode_responses=True)
    live_s = live_server.settings.live_hours * 3600
    assert services.store.retention_s > 10 * live_s
    wait_for(lambda: 0 < r.ttl(keys.call(sid)) <= live_s, what="the archived call's keys shortened")
    assert 0 < r.ttl(keys.timeline(sid)) <= live_s and r.ttl(keys.settled(sid)) <= live_s
    # when Redis has let the call go, the API and the timeline page read it from the store
    kinds = [fields["type"] for _, fields in r.xrange(keys.timeline(sid))]
    r.delete(keys.call(sid), keys.timeline(sid))
    r.zrem(keys.calls_index(), sid)
    r.close()
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30,
                                 headers={"Authorization": "Bearer dev-supervisor-token"}) as api:
        for path in (f"/api/calls/{sid}/timeline", f"/dashboard/api/calls/{sid}/timeline"):
            body = (await api.get(path)).json()
            assert body["call"]["archived"] == "1" and body["call"]["queue"] == row["queue"], body
            assert [e["type"] for e in body["timeline"]] == kinds
            assert all(isinstance(e["probs"], dict) for e in body["timeline"] if e["type"] == "reading")
        # the erasure finds it by the number's salted hash, though Redis holds nothing of it now
        erased = (await api.post("/api/erasures", json={"number": "+1 555 000 7777"})).json()
        assert erased["erased"] == [sid]
        assert (await api.get(f"/api/calls/{sid}")).status_code == 404
    assert await archived() is None and await asyncio.to_thread(services.history.timeline, sid) == []


async def test_the_archiver_deletes_calls_past_their_retention_from_the_store(redis_url, history):
    store = make_store(redis_url)
    archiver = Archiver(store.redis, history, consumer=f"a1-{history.engine}", retention_s=20.0, purge_every_s=0.0)
    await store.redis.delete(keys.archive())  # only this test's call in the hand-off stream
    await archiver.ensure_group()
    old = await finished_call(store, csat=None)  # started 30 s ago: past a 20 s retention
    assert await archiver.run_once(block_ms=100) == 1 and history.call(old) is not None
    assert history.query("SELECT count(*) FROM call_topics WHERE call_sid = ?", [old])[0][0] == 1
    assert await archiver.purge_due() == 1 and history.call(old) is None
    assert history.query("SELECT count(*) FROM call_topics WHERE call_sid = ?", [old])[0][0] == 0
    assert history.timeline(old) == []
    await store.redis.aclose()
