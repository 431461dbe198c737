import asyncio
import json
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from emoroute.redis_server import EmbeddedRedis, free_port
from router import keys
from router.policy import Decision
from router.store import CallStore, Outbox, ReadingRecord, queue_score

QUEUES = ("retention", "sales", "general")


def make_store(url: str, spool: Path | None = None) -> CallStore:
    client = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=0.3, socket_timeout=1)
    return CallStore(client, outbox=Outbox(spool), retention_s=3600, seconds_per_point=60, queues=QUEUES)


def reading(t: float, label: str = "angry") -> ReadingRecord:
    probs = {"angry": 0.7, "happy": 0.1, "neutral": 0.1, "sad": 0.1}
    return ReadingRecord(t=t, kind="utterance", start_s=t - 1, end_s=t, label=label, probs=probs, arousal=0.5,
                         valence=-0.5, model="test@1")


async def test_call_lifecycle_is_stored_in_streams_and_hashes(redis_url):
    store = make_store(redis_url)
    await store.call_started(call_sid="CA1", stream_sid="MZ1", caller="+1555", started_at=1000.0)
    await store.add_reading(call_sid="CA1", reading=reading(1.5))
    await store.record_decision(call_sid="CA1", decision=Decision("retention", 8, "angry tone", "anger"),
                                t=1.6, arrival=1001.0, latency_ms=42.0)
    assert (await store.get_call("CA1"))["status"] == "queued"
    await store.call_ended(call_sid="CA1", t=5.0, reason="stop")
    call = await store.get_call("CA1")
    assert call["status"] == "ended" and call["queue"] == "retention" and call["decision_latency_ms"] == "42.0"
    timeline = await store.get_timeline("CA1")
    assert [e["type"] for e in timeline] == ["started", "reading", "decision", "ended"]
    assert timeline[1]["probs"]["angry"] == 0.7 and timeline[1]["model"] == "test@1"
    assert 0 < await store.redis.ttl(keys.timeline("CA1")) <= 3600
    assert await store.redis.zcard(keys.queue("retention")) == 0  # left the queue when the call ended
    assert await store.redis.sismember(keys.calls_live(), "CA1") == 0
    await store.redis.aclose()


async def test_queue_orders_by_priority_then_arrival_and_ages(redis_url):
    store = make_store(redis_url)
    await store.desk.register_agent(agent_id="a1", name="Ann", skills=["retention", "general"])
    for sid, queue, priority, arrival in [("CA_old_low", "general", 3, 1000.0), ("CA_new_high", "retention", 9, 1300.0),
                                          ("CA_new_low", "general", 3, 1310.0)]:
        await store.record_decision(call_sid=sid, decision=Decision(queue, priority, "r", "x"), t=1, arrival=arrival,
                                    latency_ms=None)
    # priority 9 arriving 300 s later still beats priority 3 (300 s < 6 points * 60 s) ...
    assert await store.desk.take_next(agent_id="a1") == "CA_new_high"
    # ... and among equal priorities the earlier caller goes first.
    assert await store.desk.take_next(agent_id="a1") == "CA_old_low"
    assert (await store.get_call("CA_old_low"))["agent"] == "a1"
    assert await store.desk.take_next(agent_id="a1") == "CA_new_low"
    assert await store.desk.take_next(agent_id="a1") is None
    # ageing: a low-priority call that waited long enough outranks a fresh high one
    assert queue_score(3, 0.0, 60) < queue_score(9, 400.0, 60)
    await store.redis.aclose()


async def test_two_agents_never_take_the_same_call(redis_url):
    store = make_store(redis_url)
    for a in ("a1", "a2", "a3"):
        await store.desk.register_agent(agent_id=a, name=a, skills=["general"])
    for i in range(10):
        await store.record_decision(call_sid=f"CA{i}", decision=Decision("general", 3, "r", "x"), t=1,
                                    arrival=1000.0 + i, latency_ms=None)
    taken = await asyncio.gather(*(store.desk.take_next(agent_id=f"a{1 + i % 3}") for i in range(12)))
    got = [t for t in taken if t]
    assert sorted(got) == sorted(f"CA{i}" for i in range(10))
    await store.redis.aclose()


async def test_unknown_skill_is_rejected(redis_url):
    store = make_store(redis_url)
    with pytest.raises(ValueError, match="unknown queues"):
        await store.desk.register_agent(agent_id="a", name="a", skills=["vip"])
    await store.redis.aclose()


async def test_redis_outage_loses_nothing_and_replays_in_order(tmp_path):
    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis", port=port)
    server.start()
    spool = tmp_path / "outbox.jsonl"
    store = make_store(server.url, spool)
    assert await store.call_started(call_sid="CA9", stream_sid="MZ9", caller="", started_at=1.0)
    server.stop()
    assert not await store.add_reading(call_sid="CA9", reading=reading(1.0))
    assert not await store.add_reading(call_sid="CA9", reading=reading(2.0, "happy"))
    assert not store.redis_up and len(store.outbox) == 2
    store.outbox.sync()  # the spool is written by its own thread, off the event loop
    assert len(spool.read_text().splitlines()) == 2
    # a restart of our process while Redis is down keeps the spool
    assert len(Outbox(spool)) == 2
    server = EmbeddedRedis(tmp_path / "redis", port=port)
    server.start()
    assert await store.flush_outbox() == 2
    labels = [e.get("label") for e in await store.get_timeline("CA9") if e["type"] == "reading"]
    assert labels == ["angry", "happy"]
    store.outbox.sync()
    assert not spool.exists()
    await store.redis.aclose()
    server.stop()


def test_outbox_spool_is_json_lines(tmp_path):
    box = Outbox(tmp_path / "o.jsonl")
    box.add([("hset", ["k"], {"mapping": {"a": 1}})])
    box.sync()
    assert json.loads((tmp_path / "o.jsonl").read_text()) == [["hset", ["k"], {"mapping": {"a": 1}}]]


def new_sid() -> str:
    import uuid
    return "CA" + uuid.uuid4().hex


async def test_every_call_key_expires_from_the_start_and_timelines_are_capped(redis_url):
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = CallStore(client, outbox=Outbox(None), retention_s=3600, seconds_per_point=60, queues=QUEUES,
                      timeline_max=100, max_call_s=600)
    sid = new_sid()
    await store.call_started(call_sid=sid, stream_sid="MZ1", caller="", started_at=1000.0)
    assert 3600 < await client.ttl(keys.call(sid)) <= 4200
    assert 3600 < await client.ttl(keys.timeline(sid)) <= 4200
    for i in range(600):
        await store.add_reading(call_sid=sid, reading=reading(float(i)))
    assert await client.xlen(keys.timeline(sid)) < 300  # MAXLEN ~ 100 trims in whole nodes
    latest = await store.get_timeline(sid, count=5, latest=True)
    assert [e["t"] for e in latest] == ["595.0", "596.0", "597.0", "598.0", "599.0"]
    await client.aclose()


async def test_a_decision_finishing_after_the_end_or_with_an_agent_never_queues_the_call(redis_url):
    store = make_store(redis_url)
    ended, taken = new_sid(), new_sid()
    for sid in (ended, taken):
        await store.call_started(call_sid=sid, stream_sid="MZ", caller="", started_at=1.0)
    await store.call_ended(call_sid=ended, t=3.0, reason="stop")
    assert await store.record_decision(call_sid=ended, decision=Decision("sales", 5, "r", "x"), t=2.0,
                                       arrival=2.0, latency_ms=1.0) is False
    assert await store.redis.hget(keys.call(ended), "status") == "ended"
    assert await store.redis.zscore(keys.queue("sales"), ended) is None
    await store.desk.register_agent(agent_id="a1", name="A", skills=["general"])
    assert await store.record_decision(call_sid=taken, decision=Decision("general", 3, "r", "x"), t=2.0,
                                       arrival=2.0, latency_ms=1.0) is True
    assert await store.desk.take_next(agent_id="a1") == taken
    for kind in ("reroute", "reprioritise"):
        assert await store.record_decision(call_sid=taken, decision=Decision("retention", 9, "r", "text"), t=4.0,
                                           arrival=2.0, latency_ms=None, kind=kind) is False
    assert await store.redis.hget(keys.call(taken), "status") == "with_agent"
    assert [await store.redis.zscore(keys.queue(q), taken) for q in QUEUES] == [None, None, None]
    await store.redis.aclose()


async def test_the_outbox_survives_readonly_oom_and_wrongtype_replies(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", persist=False)
    server.start()
    admin = aioredis.Redis.from_url(server.url, decode_responses=True)
    spool = tmp_path / "outbox.jsonl"
    store = make_store(server.url, spool)
    sid = new_sid()
    await store.call_started(call_sid=sid, stream_sid="MZ", caller="", started_at=1.0)
    # READONLY: the server became a replica (of nobody): writes are refused as a whole
    await admin.execute_command("REPLICAOF", "127.0.0.1", "1")
    assert not await store.add_reading(call_sid=sid, reading=reading(1.0))
    assert await store.flush_outbox() == 0 and len(store.outbox) == 1
    await admin.execute_command("REPLICAOF", "NO", "ONE")
    # OOM: no memory left for writes
    await admin.config_set("maxmemory", "1")
    assert not await store.add_reading(call_sid=sid, reading=reading(2.0, "happy"))
    assert await store.flush_outbox() == 0 and len(store.outbox) == 2
    await admin.config_set("maxmemory", "0")
    assert await store.flush_outbox() == 2
    # WRONGTYPE: a data error, retried on the next flushes, then set aside so the rest goes through
    await admin.delete(keys.timeline(sid))
    await admin.set(keys.timeline(sid), "not a stream")
    assert not await store.add_reading(call_sid=sid, reading=reading(3.0))
    other = new_sid()
    assert not await store.call_started(call_sid=other, stream_sid="MZ", caller="", started_at=2.0)
    assert [await store.flush_outbox() for _ in range(3)] == [0, 0, 2]
    assert store.outbox.dead_lettered == 1 and len(store.outbox) == 0
    assert await admin.hget(keys.call(other), "status") == "listening"
    store.outbox.sync()
    dead = [json.loads(line) for line in (tmp_path / "outbox-dead.jsonl").read_text().splitlines()]
    assert "WRONGTYPE" in dead[0]["error"]
    await admin.aclose()
    await store.redis.aclose()
    server.stop()


def test_the_spool_is_bounded_compacted_and_capped_on_reload(tmp_path):
    spool = tmp_path / "o.jsonl"
    box = Outbox(spool, max_items=5)
    for i in range(2500):
        box.add([("set", [f"k{i}", i], {})])
    box.sync()
    assert len(box) == 5 and box.dropped == 2495
    assert len(spool.read_text().splitlines()) <= 2 * 1000 + 1  # compacted as it goes
    box.rewrite_spool()
    box.sync()
    kept = [json.loads(line)[0][1][0] for line in spool.read_text().splitlines()]
    assert kept == [f"k{i}" for i in range(2495, 2500)]
    spool.write_text("".join(json.dumps([["set", [f"k{i}", i], {}]]) + "\n" for i in range(50)))
    reloaded = Outbox(spool, max_items=10)
    reloaded.sync()
    assert len(reloaded) == 10 and reloaded.pending[0][0][1][0] == "k40"
    assert len(spool.read_text().splitlines()) == 10


async def test_a_phase_change_without_an_audio_clock_is_timed_from_the_call_start_and_starts_the_wait(redis_url):
    # the process holding the stream is gone: the webhook stores the phase with t=None
    import time

    store = make_store(redis_url)
    sid = "CA" + "7" * 32
    await store.call_started(call_sid=sid, stream_sid="MZ7", caller="", started_at=time.time() - 42.0)
    await store.record_decision(call_sid=sid, decision=Decision("sales", 5, "keyed 3", "keypad"), t=0.0,
                                arrival=time.time(), latency_ms=None, kind="keypad", enqueued=False)
    assert "enqueued_at" not in await store.get_call(sid)  # identification first: no wait yet
    await store.phase_changed(call_sid=sid, phase="queue", t=None)
    (phase,) = [e for e in await store.get_timeline(sid) if e["type"] == "phase"]
    assert 41.5 < float(phase["t"]) < 60
    call = await store.get_call(sid)
    assert call["phase"] == "queue" and abs(float(call["enqueued_at"]) - time.time()) < 5
    await store.redis.aclose()


async def test_take_next_passes_over_a_call_keying_its_identification_until_it_could_have_finished(redis_url):
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = CallStore(client, outbox=Outbox(None), retention_s=3600, seconds_per_point=60, queues=QUEUES,
                      identification_max_s=1.5)
    await store.desk.register_agent(agent_id="a-ident", name="A", skills=["retention"])
    keying, queued, unheard = "CA" + "8" * 32, "CA" + "9" * 32, "CA" + "6" * 32
    for sid, arrival in ((keying, 100.0), (unheard, 150.0), (queued, 200.0)):
        await store.call_started(call_sid=sid, stream_sid="MZ", caller="", started_at=arrival)
        await store.record_decision(call_sid=sid, decision=Decision("retention", 8, "angry tone", "anger"),
                                    t=1.0, arrival=arrival, latency_ms=None, enqueued=False)
    await store.phase_changed(call_sid=keying, phase="identification", t=1.0)
    await store.phase_changed(call_sid=unheard, phase="identification", t=1.0)
    await store.phase_changed(call_sid=queued, phase="queue", t=5.0)
    # the first two callers are ahead in the queue but still keying their account numbers: the
    # agent's card shows as next the caller "take next" hands out
    assert await store.desk.queue_head(["retention"]) == queued
    assert await store.desk.take_next(agent_id="a-ident") == queued
    assert await store.desk.take_next(agent_id="a-ident") is None
    await store.phase_changed(call_sid=keying, phase="queue", t=9.0)  # Twilio reported the last step
    assert await store.desk.take_next(agent_id="a-ident") == keying
    assert await store.desk.take_next(agent_id="a-ident") is None
    # the other's last step is never reported (a raw stream): it is taken once it could have finished
    await asyncio.sleep(1.6)
    assert await store.desk.take_next(agent_id="a-ident") == unheard
    await client.aclose()


async def test_take_next_without_an_identification_bound_takes_the_head_of_the_queue(redis_url):
    store = make_store(redis_url)  # identification_max_s=0: a deployment that never passes over a call
    await store.desk.register_agent(agent_id="a-plain", name="A", skills=["general"])
    sid = "CA" + "5" * 32
    await store.call_started(call_sid=sid, stream_sid="MZ", caller="", started_at=100.0)
    await store.record_decision(call_sid=sid, decision=Decision("general", 5, "neutral", "neutral"),
                                t=1.0, arrival=100.0, latency_ms=None, enqueued=False)
    await store.phase_changed(call_sid=sid, phase="identification", t=1.0)
    assert await store.desk.take_next(agent_id="a-plain") == sid
    await store.redis.aclose()


async def test_calls_waiting_under_the_old_queue_names_are_moved_on_start(redis_url):
    import redis as sync_redis
    r = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    # a queue written by a version before the queues shared the {queues} slot, and one new entry
    r.zadd(keys.legacy_queue("retention"), {"CAold": 100.0, "CAboth": 50.0})
    r.zadd(keys.queue("retention"), {"CAboth": 70.0, "CAnew": 200.0})
    store = make_store(redis_url)
    assert await store.desk.move_legacy_queues() == 1
    assert r.zrange(keys.queue("retention"), 0, -1, withscores=True) == [("CAboth", 50.0), ("CAold", 100.0),
                                                                         ("CAnew", 200.0)]
    assert not r.exists(keys.legacy_queue("retention"))
    assert await store.desk.move_legacy_queues() == 0  # once
    await store.redis.aclose()
    r.close()


def test_a_transaction_is_split_by_slot_in_order_with_each_event_after_the_writes_before_it():
    from router.slots import op_slot, slot_groups
    a, b = "CA" + "a" * 32, "CA" + "b" * 32
    ops = [("hset", [keys.call(a)], {}), ("zadd", [keys.calls_index(), {a: 1}], {}),
           ("xadd", [keys.timeline(a), {}], {}), ("publish", [keys.events_channel(), "x"], {}),
           ("hset", [keys.call(a)], {}), ("sadd", [keys.calls_live(), a], {}), ("hset", [keys.call(b)], {})]
    assert slot_groups(ops) == [[0, 2], [1], [3], [4], [5], [6]]
    with pytest.raises(ValueError, match="2 slots"):  # a script over two calls' keys cannot run on a cluster
        op_slot(("eval", ["return 1", 2, keys.call(a), keys.call(b)], {}))
    assert op_slot(("eval", ["return 1", 2, keys.queue("sales"), keys.settled(b)], {})) is not None
