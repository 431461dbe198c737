import time

import pytest
import redis.asyncio as aioredis

from dashboards.cues import anger_duration, caller_cues, trend_word
from dashboards.state import analytics_of, summaries_between
from router.policy import load_policy
from router.store import CallStore, Outbox

QUEUES = ["retention", "sales", "general"]


def test_analytics_figures():
    rows = [
        {"queue": "retention", "first_emotion": "angry", "started_at": "0", "priority": "9", "escalated": "1",
         "first_valence": "-0.7", "last_valence": "0.1", "enqueued_at": "10", "picked_at": "40"},
        {"queue": "sales", "first_emotion": "happy", "started_at": "3600", "priority": "5", "language": "es",
         "first_valence": "0.6", "last_valence": "0.65", "enqueued_at": "3610", "picked_at": "3620",
         "language_checked": "es", "language_check": "kept"},
        {"queue": "retention", "first_emotion": "sad", "started_at": "3700", "priority": "4", "language": "en",
         "first_valence": "0.2", "last_valence": "-0.5", "language_checked": "es", "language_check": "en"},
        {"started_at": "3800"},
    ]
    a = analytics_of(rows, QUEUES)
    assert a["calls"] == 4
    assert a["calls_per_queue"] == {"retention": 2, "sales": 1, "general": 0, "undecided": 1}
    assert a["calls_per_language"] == {"unidentified": 2, "en": 1, "es": 1}
    # two callers taken for Spanish at the language check: one kept it, one keyed English
    assert a["language_checks"] == {"es": {"kept": 1, "english": 1, "switched": 0}}
    assert a["emotion_by_queue"] == {"retention": {"angry": 1, "sad": 1}, "sales": {"happy": 1}}
    assert a["emotion_by_hour"] == {"1970-01-01 00:00": {"angry": 1}, "1970-01-01 01:00": {"happy": 1, "sad": 1}}
    assert a["share_escalated"] == 0.25
    assert a["average_priority"] == 6.0
    assert a["average_wait_s"] == 20.0
    # taken before its identification was reported: the wait counts from the decision
    taken_early = {"queue": "general", "started_at": "3900", "decided_at": "3905", "picked_at": "3965"}
    assert analytics_of([*rows, taken_early], QUEUES)["average_wait_s"] == round((30 + 10 + 60) / 3, 2)
    assert a["emotion_evolution"] == {"improved": 1, "unchanged": 1, "worsened": 1}
    assert analytics_of([], QUEUES)["calls"] == 0


async def test_summaries_between_reads_only_the_range(redis_url):
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = CallStore(client, outbox=Outbox(None), retention_s=10 * 86400, seconds_per_point=60, queues=QUEUES)
    now = time.time()
    for sid, started in (("CA_old", now - 5 * 86400), ("CA_new", now - 60)):
        await store.call_started(call_sid=sid, stream_sid="MZ", caller="", started_at=started)
    rows = await summaries_between(store, now - 86400, now)
    assert [r["call_sid"] for r in rows] == ["CA_new"]
    slim = await summaries_between(store, now - 86400, now, ("started_at", "queue"))
    assert slim == [{"started_at": rows[0]["started_at"]}]  # only the asked fields, absent ones left out
    await client.aclose()


def reading(t, angry, start=None):
    probs = {"angry": angry, "happy": 0.0, "neutral": 1 - angry, "sad": 0.0}
    return {"type": "reading", "t": t, "start": start if start is not None else t - 1,
            "label": "angry" if angry > .5 else "neutral", "probs": probs, "arousal": 0.0, "valence": 0.0}


def test_cues_trend_duration_and_suggestion():
    timeline = [reading(2, 0.1), reading(5, 0.2), reading(9, 0.8), reading(12, 0.9),
                {"type": "transcript", "t": 12, "transcript": "I want to cancel"}]
    cues = caller_cues({"call_sid": "CA1", "intents": "cancel", "reason": "angry tone"}, timeline, load_policy().cues)
    assert cues["emotion"] == "angry" and cues["trend"] == "rising" and cues["icon"] == "😠"
    assert cues["suggestion"].startswith("Caller sounds angry and mentioned cancelling")
    assert cues["snippets"] == [{"t": 12.0, "text": "I want to cancel"}]
    assert anger_duration(timeline[:4], 0.6) == 4.0  # from the start of the 9 s reading (8 s) to 12 s
    assert anger_duration(timeline[:2], 0.6) == 0.0
    assert trend_word(-0.3) == "falling" and trend_word(0.05) == "steady"
    refused = caller_cues({"call_sid": "CA2", "opted_out": "1", "keypad": "1"}, [], load_policy().cues)
    assert refused["suggestion"].startswith("The caller refused the analysis") and refused["keypad"] == "1"
    empty = caller_cues({}, [], load_policy().cues)
    assert empty["emotion"] == "unknown" and empty["suggestion"]
    # the same angry readings on a noisy line: the cue goes by the words, and the card says so
    noisy = [{**r, "noisy": "1"} for r in timeline[:4]] + [timeline[4]]
    spoken = caller_cues({"call_sid": "CA3", "intents": "cancel", "language": "es"},
                         [*noisy[:4], {**noisy[4], "original": "quiero cancelar"}], load_policy().cues)
    assert spoken["line"] == "noisy line: going by what was said" and spoken["language"] == "es"
    assert spoken["suggestion"].startswith("Caller mentioned cancelling")  # not "sounds angry"
    assert spoken["snippets"] == [{"t": 12.0, "text": "I want to cancel", "original": "quiero cancelar"}]
    assert cues["line"] == ""


def _call(sid, day, phases, **extra):
    import json

    return {"call_sid": sid, "started_at": str(day * 86400 + 3600), "phase_stats": json.dumps(phases), **extra}


def test_insights_name_the_phase_that_hurts_most_and_relate_csat_to_the_trajectory():
    from dashboards.insights import insights_of

    rows = [
        # three calls: fine greeting, identification sours them, the agent brings them back
        _call("CA1", 0, {"greeting": [2, .1, .3], "identification": [1, .5, -.4], "agent": [3, .1, .2]},
              queue="general", intents="billing_dispute", first_emotion="neutral", peak_anger="0.5", csat="4",
              first_valence="0.3", last_valence="0.2", caller_hash="h1"),
        _call("CA2", 0, {"greeting": [1, .2, .2], "identification": [1, .6, -.3]}, queue="retention",
              intents="cancel", first_emotion="angry", peak_anger="0.9", csat="5", emotion="angry",
              first_valence="-0.5", last_valence="-0.6", anger_rose="1", caller_hash="h2"),
        _call("CA3", 1, {"greeting": [1, 0., .5], "identification": [2, .4, 0.]}, queue="sales", keypad="3",
              first_emotion="happy", peak_anger="0.1", csat="1", first_valence="-0.2", last_valence="0.4",
              asked_manager="1", caller_hash="h1"),
        _call("CA4", 1, {}, queue="general", opted_out="1", keypad="0", caller_hash="h3"),
    ]
    a = insights_of(rows, ["retention", "sales", "general"], key_intents={"3": "purchase", "1": "cancel"},
                    repeat_days=7)
    ph = a["phases"]
    assert ph["all"]["greeting"] == {"calls": 3, "anger": 0.1, "valence": 0.333}
    assert ph["worsened"]["greeting>identification"] == {"calls": 3, "worsened": 3, "share": 1.0}
    assert ph["worsened"]["identification>agent"] == {"calls": 1, "worsened": 0, "share": 0.0}
    assert ph["hurts_most"] == {"from": "greeting", "to": "identification", "share": 1.0, "calls": 3}
    assert set(ph["per_queue"]["retention"]) == {"greeting", "identification"}
    t = a["topics"]
    assert t["totals"] == {"billing_dispute": 1, "cancel": 1, "purchase": 1, "(none)": 1}
    assert t["by_day"] == {"1970-01-01": {"billing_dispute": 1, "cancel": 1},
                           "1970-01-02": {"purchase": 1, "(none)": 1}}
    assert t["emotion"]["cancel"] == {"angry": 1} and t["angry_share"]["cancel"] == 1.0
    assert t["by_queue"]["sales"] == {"purchase": 1}
    e = a["escalation"]
    assert e["by_day"]["1970-01-01"] == {"calls": 2, "anger_rose": 1, "rerouted": 0, "asked_manager": 0, "any": 1}
    assert e["share_any"] == 0.5
    assert a["repeat_callers"] == {"days": 7, "repeat_calls": 1, "share": 0.25, "callers": 3}
    assert rows[2]["repeat_caller"] == "1"
    assert a["opt_outs"] == {"calls": 1, "share": 0.25}
    c = a["csat"]
    assert c["answered"] == 3 and c["distribution"] == {"1": 1, "2": 0, "3": 0, "4": 1, "5": 1}
    assert c["correlation"]["valence_change"]["r"] < -0.9  # in these three calls the score ran against the change
    assert [(d["call_sid"], d["why"]) for d in c["disagreements"]] == [
        ("CA2", "high score after a call that stayed angry"),
        ("CA3", "low score after a call that improved and was never angry")]
    empty = insights_of([], ["general"], key_intents={})
    assert empty["phases"]["hurts_most"] is None and empty["csat"]["answered"] == 0


@pytest.fixture
def redis_analytics_server(server_factory, redis_url):  # type: ignore[no-untyped-def]
    """A server without a history store (EMOROUTE_HISTORY_URL=off): its analytics count the calls Redis holds."""
    thread, server = server_factory(redis_url, history_url="off")
    with thread:
        yield server


def test_analytics_over_many_calls_never_stall_the_live_event_loop(redis_analytics_server, redis_url):
    """The figures take seconds of pure Python over a big period; the server keeps answering meanwhile."""
    import json
    import threading

    import httpx
    import redis

    from router import keys

    live_server = redis_analytics_server
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    now = time.time()
    phases = json.dumps({"greeting": [2, 0.4, -0.2], "queue": [3, 0.6, -0.5], "agent": [2, 0.1, 0.3]})
    with r.pipeline(transaction=False) as pipe:
        for i in range(40_000):
            sid = f"CA{i:032x}"
            pipe.hset(keys.call(sid), mapping={
                "call_sid": sid, "started_at": now - i * 0.05, "queue": QUEUES[i % 3], "first_emotion": "angry",
                "first_valence": "-0.4", "last_valence": "0.2", "intents": "cancel", "phase_stats": phases,
                "peak_anger": "0.7", "caller_hash": f"h{i % 9000}", "csat": str(1 + i % 5)})
            pipe.zadd(keys.calls_index(), {sid: now - i * 0.05})
        pipe.execute()
    result: dict = {}

    def ask() -> None:
        started = time.monotonic()
        result["figures"] = httpx.get(live_server.url + "/dashboard/api/analytics",
                                      headers={"Authorization": "Bearer dev-supervisor-token"}, timeout=120).json()
        result["took"] = time.monotonic() - started

    worker = threading.Thread(target=ask)
    worker.start()
    waits = []
    while worker.is_alive():
        started = time.monotonic()
        assert httpx.get(live_server.url + "/healthz", timeout=10).status_code == 200
        waits.append(time.monotonic() - started)
        time.sleep(0.05)
    worker.join()
    assert result["figures"]["calls"] == 40_000 and result["figures"]["repeat_callers"]["repeat_calls"] > 0
    assert result["took"] > 1.0 and len(waits) >= 5  # long enough to have stalled the loop, had it run there
    assert max(waits) < 0.5, waits
    r.close()


def test_identical_analytics_requests_share_one_computation_and_run_one_at_a_time(redis_analytics_server, redis_url):
    """A reload storm computes the figures once; different periods queue behind each other."""
    live_server = redis_analytics_server
    import json
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    import httpx
    import redis

    from router import keys

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    base = 86400.0 * 400  # a day of its own, far from the other tests' calls
    with r.pipeline(transaction=False) as pipe:
        for i in range(20_000):
            sid = f"CB{i:032x}"
            pipe.hset(keys.call(sid), mapping={"call_sid": sid, "started_at": base + i, "queue": QUEUES[i % 3],
                                               "first_emotion": "neutral", "caller_hash": f"g{i % 5000}"})
            pipe.zadd(keys.calls_index(), {sid: base + i})
        pipe.execute()
    iso = [datetime.fromtimestamp(base + s, UTC).isoformat() for s in (0, 10_000, 20_000)]
    gate = live_server.app.state.services.analytics_gate
    before = gate.computed

    def get(path: str, lo: str, hi: str) -> httpx.Response:
        return httpx.get(f"{live_server.url}/dashboard/api/{path}", params={"start": lo, "end": hi},
                         headers={"Authorization": "Bearer dev-supervisor-token"}, timeout=120)

    with ThreadPoolExecutor(4) as pool:
        same = list(pool.map(lambda _: get("analytics", iso[0], iso[2]), range(4)))
    assert all(resp.status_code == 200 for resp in same)
    assert {json.dumps(resp.json(), sort_keys=True) for resp in same} == {json.dumps(same[0].json(), sort_keys=True)}
    assert same[0].json()["calls"] == 20_000
    assert gate.computed - before == 1, gate.computed - before  # four requests, one computation
    with ThreadPoolExecutor(2) as pool:
        halves = list(pool.map(lambda p: get("analytics", *p), [(iso[0], iso[1]), (iso[1], iso[2])]))
    assert [h.json()["calls"] for h in halves] == [10_001, 10_000]  # both ends of a period count
    assert gate.computed - before == 3
    csv = get("analytics.csv", iso[0], iso[2])
    assert csv.status_code == 200 and csv.text.count("\n") == 20_001
    assert csv.headers.get("transfer-encoding") == "chunked"  # streamed, 5,000 calls at a time
    import csv as csv_module
    import io

    rows = list(csv_module.DictReader(io.StringIO(csv.text)))
    assert [row["call_sid"] for row in rows[:2]] == [f"CB{0:032x}", f"CB{1:032x}"]  # oldest first
    # each caller calls every 5,000 s: every call after the first 5,000 is a repeat, across batches
    assert sum(row["repeat_caller"] == "1" for row in rows) == 15_000
    assert rows[4_999]["repeat_caller"] == "" and rows[5_000]["repeat_caller"] == "1"
    r.close()


async def test_the_gate_runs_different_computations_one_at_a_time():
    import asyncio

    from dashboards.gate import ComputeGate

    gate, running, most = ComputeGate(), [0], [0]

    async def work(value: int) -> int:
        running[0] += 1
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.05)
        running[0] -= 1
        return value

    results = await asyncio.gather(*(gate.run(k, lambda k=k: work(k)) for k in (1, 2, 3, 1)))
    assert results == [1, 2, 3, 1] and most[0] == 1 and gate.computed == 3


def _random_summary(rng, i: int, started: float) -> dict[str, str]:
    import json

    phases = {p: [1, round(rng.random(), 3), round(rng.uniform(-1, 1), 3)]
              for p in ("greeting", "identification", "queue", "agent", "survey") if rng.random() < 0.7}
    r = {"queue": rng.choice(QUEUES), "priority": str(rng.randint(1, 10)),
         "first_emotion": rng.choice(["angry", "happy", "neutral", "sad"]), "emotion": rng.choice(["angry", "neutral"]),
         "first_valence": str(round(rng.uniform(-1, 1), 3)), "last_valence": str(round(rng.uniform(-1, 1), 3)),
         "intents": rng.choice(["cancel", "purchase", "", "cancel,complaint"]), "keypad": rng.choice(["", "1", "3"]),
         "peak_anger": str(round(rng.random(), 3)), "caller_hash": f"h{rng.randint(0, 40)}",
         "phase_stats": json.dumps(phases), "enqueued_at": str(started + 5), "picked_at": str(started + 40)}
    for flag in ("escalated", "anger_rose", "rerouted", "asked_manager", "opted_out"):
        if rng.random() < 0.15:
            r[flag] = "1"
    if rng.random() < 0.4:
        r["csat"] = str(rng.randint(1, 5))
    return r


async def test_hourly_rollups_give_the_same_figures_and_are_read_instead_of_the_calls(redis_url, monkeypatch):
    import random

    from dashboards import rollup
    from dashboards.insights import INSIGHT_FIELDS, insights_of
    from dashboards.rollup import closed_hours, period_figures, rollup_version
    from dashboards.state import ANALYTICS_FIELDS
    from router import keys

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    store = CallStore(client, outbox=Outbox(None), retention_s=10 * 86400, seconds_per_point=60, queues=QUEUES)
    rng = random.Random(7)
    now = (time.time() // 3600) * 3600 + 1800  # half past the current hour
    lo, hi = now - 6.25 * 3600, now  # a partial hour, five whole hours, the open hour
    for i in range(300):
        started = now - rng.uniform(0, 8 * 3600)  # some before the period: repeat-caller history
        sid = f"CA{i:032x}"
        await store.call_started(call_sid=sid, stream_sid="MZ", caller="", started_at=started)
        await store.mark(call_sid=sid, fields=_random_summary(rng, i, started))
    key_intents = {"1": "cancel", "3": "purchase"}

    async def figures(settle_s: float = 3600.0, intents=key_intents):
        return await period_figures(store, lo, hi, queues=QUEUES, key_intents=intents, repeat_days=1.0,
                                    settle_s=settle_s, now=now)

    async def direct():
        rows = await summaries_between(store, lo, hi, tuple(dict.fromkeys((*ANALYTICS_FIELDS, *INSIGHT_FIELDS))))
        history = await summaries_between(store, lo - 86400, hi, ("caller_hash", "started_at"))
        return {"start": lo, "end": hi, **analytics_of(rows, QUEUES),
                **insights_of(rows, QUEUES, key_intents=key_intents, history=history, repeat_days=1.0)}

    monkeypatch.setattr(rollup, "CHUNK_HOURS", 3)  # hours never counted are read three at a time
    hours = closed_hours(lo, hi, settle_s=3600.0, now=now)
    # four closed hours; the partial first hour, the hour still settling and the open one come from calls
    assert hours == [int(now // 3600) - k for k in (5, 4, 3, 2)]
    cold = await figures()
    assert cold == await direct() and cold["calls"] > 200 and cold["repeat_callers"]["repeat_calls"] > 0
    version = rollup_version(key_intents)
    for h in hours:
        assert await client.hexists(keys.analytics_hour(version, h), "tally")
        assert 0 < await client.ttl(keys.analytics_hour(version, h)) <= 10 * 86400
    assert not await client.exists(keys.analytics_hour(version, hours[-1] + 1))

    # a call of a closed hour changed behind the roll-up's back: the stored sums are what is read
    sid = next(s for s in await client.zrangebyscore(keys.calls_index(), hours[0] * 3600, hours[0] * 3600 + 3599))
    before = await client.hgetall(keys.call(sid))
    await client.hset(keys.call(sid), mapping={"queue": "sales", "escalated": "1", "csat": "5"})
    assert await figures() == cold
    await client.delete(keys.call(sid))
    await client.hset(keys.call(sid), mapping=before)
    # while a call of the open hour counts at once
    late = (await client.zrangebyscore(keys.calls_index(), (hours[-1] + 1) * 3600, hi))[0]
    await client.hset(keys.call(late), mapping={"opted_out": "1", "csat": "1", "peak_anger": "0.95"})
    warm = await figures()
    assert warm != cold and warm == await direct()
    # an hour's roll-up lost (expired, deleted by an operator) in the middle: recounted from its calls
    await client.delete(keys.analytics_hour(version, hours[1]))
    assert await figures() == warm and await client.hexists(keys.analytics_hour(version, hours[1]), "tally")
    # other keypad topics count differently: a roll-up of its own
    other = await figures(intents={"1": "complaint"})
    assert other["topics"]["totals"] != warm["topics"]["totals"]
    await client.aclose()


async def test_no_rollup_is_stored_while_writes_wait_in_the_outbox(redis_url):
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = CallStore(client, outbox=Outbox(None), retention_s=86400, seconds_per_point=60, queues=QUEUES)
    store.outbox.add([("hset", ["emoroute:call:{CA_pending}", {"csat": "2"}], {})])  # a write Redis missed
    assert await store.stored.write_rollup("v-test", 1000, {"tally": "{}"}, ttl_s=3600) is False
    assert await store.stored.read_rollups("v-test", [1000], "tally") == [None]
    store.outbox.pending.clear()
    assert await store.stored.write_rollup("v-test", 1000, {"tally": "{}"}, ttl_s=3600) is True
    assert await store.stored.read_rollups("v-test", [1000, 1001], "tally") == ["{}", None]
    assert await store.stored.write_rollup("v-test", 1002, {"tally": "{}"}, ttl_s=30) is False  # would expire at once
    await client.aclose()


def test_agents_are_shown_with_how_their_callers_fared():
    from dashboards.insights import Tally, insights_of

    rows = [
        _call("CA1", 0, {"greeting": [1, .8, -.6], "queue": [2, .7, -.5], "agent": [4, .2, .2]}, agent="ann", csat="5"),
        _call("CA2", 0, {"agent": [2, .4, 0.]}, agent="ann"),  # taken at once: nothing to compare with
        _call("CA3", 1, {"identification": [1, .1, .4], "agent": [3, .6, -.2]}, agent="bob", csat="2"),
        _call("CA4", 1, {"queue": [1, .3, 0.]}),  # never reached an agent
    ]
    agents = insights_of(rows, ["general"], key_intents={})["agents"]
    assert list(agents) == ["ann", "bob"]  # busiest first
    assert agents["ann"] == {"calls": 2, "anger_with_agent": 0.3, "valence_with_agent": 0.1, "compared": 1,
                             "improved": 1, "worsened": 0, "share_improved": 1.0, "csat_mean": 5.0,
                             "csat_answered": 1}
    assert agents["bob"]["worsened"] == 1 and agents["bob"]["share_improved"] == 0.0  # -0.2 after 0.4
    # per-hour sums merge to the same figures
    merged = Tally({}).merge(Tally.of(rows[:2], {}).to_dict()).merge(Tally.of(rows[2:], {}).to_dict())
    assert merged.insights(["general"])["agents"] == agents


def test_missing_hours_are_read_in_runs_of_consecutive_hours():
    from dashboards.rollup import _runs

    assert _runs([1, 2, 3, 7, 8, 10]) == [(1, 3), (7, 8), (10, 10)]
    assert _runs([]) == [] and _runs([5]) == [(5, 5)]


async def test_a_write_replayed_after_its_hour_was_counted_drops_that_hours_rollup(redis_url):
    from dashboards.rollup import period_figures, rollup_version
    from router import keys

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    now = (time.time() // 3600) * 3600 + 1800
    hour = int(now // 3600) - 4  # long closed
    counted = CallStore(client, outbox=Outbox(None), retention_s=86400, seconds_per_point=60, queues=QUEUES)
    for i in range(3):
        sid = f"CA{i:032x}"
        await counted.call_started(call_sid=sid, stream_sid="MZ", caller="", started_at=hour * 3600 + 60 * i)
        await counted.mark(call_sid=sid, fields={"status": "ended", "queue": "general", "csat": "4"})

    async def figures():
        return await period_figures(counted, hour * 3600, now, queues=QUEUES, key_intents={}, repeat_days=1.0,
                                    settle_s=3600.0, now=now)

    before = await figures()
    version = rollup_version({})
    assert await client.exists(keys.analytics_hour(version, hour)) and before["calls"] == 3
    # another process held a write for one of those calls while Redis was down, and replays it now
    late = CallStore(client, outbox=Outbox(None), retention_s=86400, seconds_per_point=60, queues=QUEUES)
    late.outbox.add([("hset", [keys.call(f"CA{1:032x}")], {"mapping": {"csat": "1", "escalated": "1"}})])
    assert await late.flush_outbox() == 1
    assert not await client.exists(keys.analytics_hour(version, hour))  # dropped, so recounted
    after = await figures()
    assert after != before and after["csat"] != before["csat"]
    await client.aclose()
