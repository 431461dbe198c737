"""A caller's right to erasure: every finished call from a number deleted, in Redis and the history store."""

import json
import time
from datetime import UTC, datetime

import httpx
import redis
import redis.asyncio as aioredis

from router import keys
from router.phases import caller_hash
from router.store import CallStore, Outbox
from tests.helpers import HeldCall, new_call_sid, stream_call, wait_for

SUPERVISOR = {"Authorization": "Bearer dev-supervisor-token"}
AGENT = {"Authorization": "Bearer dev-agent-token"}
ASKING, OTHER = "+15550007777", "+15550008888"


async def ended_calls(ws: str, audio, r: redis.Redis, *callers: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Stream one real call from each of ``callers`` through the live path; return their SIDs once ended."""
    sids = [new_call_sid() for _ in callers]
    for sid, caller in zip(sids, callers, strict=True):
        await stream_call(ws, audio, call_sid=sid, caller=caller)
    for sid in sids:
        wait_for(lambda s=sid: r.hget(keys.call(s), "status") == "ended", what="call end")
    return sids


async def test_a_caller_is_erased_with_their_calls_and_the_analytics_forget_them(live_server, neutral_audio,
                                                                                  redis_url):
    base = live_server.url
    ws = base.replace("http://", "ws://") + "/twilio/stream"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    # two real calls through the live path, one from each number, and an older call of the asker's
    sid_mine, sid_other = await ended_calls(ws, neutral_audio, r, ASKING, OTHER)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = CallStore(client, outbox=Outbox(None), retention_s=86400, seconds_per_point=60,
                      queues=["retention", "sales", "general"], archive=True)
    old_sid, old_start = new_call_sid(), time.time() - 3 * 3600
    await store.call_started(call_sid=old_sid, stream_sid="MZ", caller=ASKING, started_at=old_start,
                             caller_hash=caller_hash(live_server.settings.secret_key, ASKING))
    await store.mark(call_sid=old_sid, fields={"queue": "general", "first_emotion": "neutral"})
    await store.call_ended(call_sid=old_sid, t=60.0, reason="completed")  # handed to the archiver
    await client.aclose()
    history = live_server.app.state.services.history
    since = datetime.fromtimestamp(time.time() - 4 * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%S")

    def calls_in_analytics() -> int:
        resp = httpx.get(f"{base}/dashboard/api/analytics", params={"start": since}, headers=SUPERVISOR, timeout=30)
        resp.raise_for_status()
        return int(resp.json()["calls"])

    # the analytics read the history store: the three calls once the archiver has written them
    wait_for(lambda: calls_in_analytics() == 3, what="the three calls archived")
    assert history.call(old_sid)["caller_hash"]

    # an agent who took the asker's call still points at it
    assert httpx.put(f"{base}/api/agents/agent-9", json={"name": "Nia", "skills": ["general"]},
                     headers=SUPERVISOR).status_code == 204
    r.hset(keys.agent("agent-9"), "current_call", sid_mine)
    # only a supervisor, only a number
    assert httpx.delete(f"{base}/api/callers/{ASKING}", headers=AGENT).status_code == 403
    assert httpx.delete(f"{base}/api/callers/not-a-number", headers=SUPERVISOR).status_code == 422
    with HeldCall(ws, neutral_audio, caller=ASKING) as live:  # a call of theirs still in progress
        wait_for(lambda: r.hget(keys.call(live.sid), "status") in ("listening", "queued"), what="live call")
        resp = httpx.delete(f"{base}/api/callers/{ASKING}", headers=SUPERVISOR)
        assert resp.status_code == 200
        body = resp.json()
        assert sorted(body["erased"]) == sorted([sid_mine, old_sid]) and body["live"] == [live.sid]
        assert r.exists(keys.call(live.sid))  # left alone until it ends
    for sid in (sid_mine, old_sid):
        assert not r.exists(keys.call(sid)) and not r.exists(keys.timeline(sid))
        assert r.zscore(keys.calls_index(), sid) is None
    assert history.call(sid_mine) is None and history.call(old_sid) is None  # the store forgot them too
    assert r.hget(keys.agent("agent-9"), "current_call") is None and r.hget(keys.agent("agent-9"), "name") == "Nia"
    assert r.hget(keys.call(sid_other), "caller") == OTHER  # another caller's call is untouched
    # the analytics recount the hour without them: the other caller, and the asker's call that was live
    wait_for(lambda: r.hget(keys.call(live.sid), "status") == "ended", what="the live call's end")
    wait_for(lambda: history.call(live.sid) is not None, what="the live call archived")
    assert calls_in_analytics() == 2
    csv = httpx.get(f"{base}/dashboard/api/analytics.csv", params={"start": since}, headers=SUPERVISOR).text
    assert sid_mine not in csv and old_sid not in csv and sid_other in csv
    # erased again once it ended
    assert httpx.delete(f"{base}/api/callers/{ASKING}", headers=SUPERVISOR).json() == {"erased": [live.sid],
                                                                                        "live": []}
    r.close()


async def test_a_call_is_erased_by_its_sid_and_withheld_or_client_callers_are_answered_clearly(live_server,
                                                                                              neutral_audio, redis_url):
    base = live_server.url
    ws = base.replace("http://", "ws://") + "/twilio/stream"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    withheld, client = new_call_sid(), new_call_sid()
    await stream_call(ws, neutral_audio, call_sid=withheld, caller="anonymous")
    await stream_call(ws, neutral_audio, call_sid=client, caller="client:alice_7")
    for sid in (withheld, client):
        wait_for(lambda s=sid: r.hget(keys.call(s), "status") == "ended", what="call end")
    # "anonymous" is every withheld caller at once: refused, with the way to erase one call instead
    resp = httpx.delete(f"{base}/api/callers/anonymous", headers=SUPERVISOR)
    assert resp.status_code == 422 and "DELETE /api/calls/" in resp.text
    assert r.exists(keys.call(withheld))
    # a Twilio Client identity is a caller like a number
    assert httpx.delete(f"{base}/api/callers/client:alice_7", headers=SUPERVISOR).json() == {
        "erased": [client], "live": []}
    assert not r.exists(keys.call(client))
    # one call by its SID: a supervisor only, an unknown SID is 404, a call in progress 409
    assert httpx.delete(f"{base}/api/calls/{withheld}", headers=AGENT).status_code == 403
    assert httpx.delete(f"{base}/api/calls/{new_call_sid()}", headers=SUPERVISOR).status_code == 404
    with HeldCall(ws, neutral_audio, caller="anonymous") as live:
        wait_for(lambda: r.hget(keys.call(live.sid), "status") in ("listening", "queued"), what="live call")
        assert httpx.delete(f"{base}/api/calls/{live.sid}", headers=SUPERVISOR).status_code == 409
        assert r.exists(keys.call(live.sid))
    assert httpx.delete(f"{base}/api/calls/{withheld}", headers=SUPERVISOR).json() == {"erased": [withheld],
                                                                                       "live": []}
    assert not r.exists(keys.call(withheld)) and not r.exists(keys.timeline(withheld))
    r.close()


async def test_a_write_for_an_erased_call_waiting_in_an_outbox_is_dropped_when_replayed(redis_url, tmp_path):
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    spool = tmp_path / "outbox.jsonl"
    store = CallStore(client, outbox=Outbox(spool), retention_s=86400, seconds_per_point=60,
                      queues=["retention", "sales", "general"])
    erased_sid, kept_sid = new_call_sid(), new_call_sid()
    for sid in (erased_sid, kept_sid):
        await store.call_started(call_sid=sid, stream_sid="MZ", caller=ASKING, started_at=time.time() - 60)
        await store.mark(call_sid=sid, fields={"status": "ended", "queue": "general"})
    # writes this process could not deliver (as while Redis was down), queued in order, spooled to disk
    store.outbox.add([("hset", [keys.call(kept_sid), "csat", "5"], {})])
    assert not await store.write([("hset", [keys.call(erased_sid), "csat", "2"], {}),
                                  ("xadd", [keys.timeline(erased_sid), {"type": "csat", "t": "1"}], {})])
    store.outbox.sync()
    assert len(spool.read_text().splitlines()) == 2
    # meanwhile the caller's erasure runs against Redis, and reaches this process's spool at once
    assert await store.erasure.erase_calls([erased_sid]) == 1
    store.outbox.sync()
    assert erased_sid not in spool.read_text() and kept_sid in spool.read_text()
    # the replay writes the other call's update; the erased call stays gone
    assert await store.flush_outbox() == 1 and not store.outbox.pending
    assert await client.hget(keys.call(kept_sid), "csat") == "5"
    assert not await client.exists(keys.call(erased_sid)) and not await client.exists(keys.timeline(erased_sid))
    store.outbox.sync()
    assert not spool.exists()
    store.outbox.close()
    await client.aclose()


async def test_an_erasure_reaches_redis_files_on_disk_and_the_outbox_files(server_factory, neutral_audio, tmp_path):
    # the review's finding (#33): after an erasure the append-only file still held the caller's
    # number, call SID and transcripts (found after a restart too), and the outbox files held the number
    from emoroute.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis-aof", extra_args=("--aof-use-rdb-preamble", "no"))
    url = server.start()
    aof = tmp_path / "redis-aof" / "appendonly.aof"
    number = "+15550004242"
    try:
        thread, live = server_factory(url, erasure_rewrite_delay_s=0.2)
        with thread:
            ws = live.url.replace("http://", "ws://") + "/twilio/stream"
            r = redis.Redis.from_url(url, decode_responses=True)
            sid, kept = await ended_calls(ws, neutral_audio, r, number, OTHER)
            # a write this process set aside earlier (Redis refused it), and one of another caller's
            dead = tmp_path / "outbox-dead.jsonl"
            lines = [{"error": "WRONGTYPE", "ops": [["hset", [keys.call(sid), "caller", number], {}]]},
                     {"error": "WRONGTYPE", "ops": [["hset", [keys.call(kept), "csat", "4"], {}]]}]
            dead.write_text("".join(json.dumps(line) + "\n" for line in lines))
            wait_for(lambda: number.encode() in aof.read_bytes() and sid.encode() in aof.read_bytes(),
                     what="the call on disk")
            # the number as a person types it: no +, spaces (E.164 normalisation finds it)
            resp = httpx.post(f"{live.url}/api/erasures", json={"number": "1 555 000 4242"}, headers=SUPERVISOR)
            assert resp.status_code == 200 and resp.json() == {"erased": [sid], "live": []}, resp.text
            tombstone = keys.erased(sid).encode()  # kept: a replayed write for the call is dropped, not written

            def erased_on_disk() -> bool:
                data = aof.read_bytes()
                return number.encode() not in data and sid.encode() not in data.replace(tombstone, b"")

            wait_for(erased_on_disk, timeout=15, what="the append-only file rewritten without the erased call")
            assert kept.encode() in aof.read_bytes()  # everyone else's calls stay
            assert number not in dead.read_text() and kept in dead.read_text()
            r.close()
    finally:
        server.stop()
