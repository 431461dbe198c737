import time

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
        {"queue": "sales", "first_emotion": "happy", "started_at": "3600", "priority": "5",
         "first_valence": "0.6", "last_valence": "0.65", "enqueued_at": "3610", "picked_at": "3620"},
        {"queue": "retention", "first_emotion": "sad", "started_at": "3700", "priority": "4",
         "first_valence": "0.2", "last_valence": "-0.5"},
        {"started_at": "3800"},
    ]
    a = analytics_of(rows, QUEUES)
    assert a["calls"] == 4
    assert a["calls_per_queue"] == {"retention": 2, "sales": 1, "general": 0, "undecided": 1}
    assert a["emotion_by_queue"] == {"retention": {"angry": 1, "sad": 1}, "sales": {"happy": 1}}
    assert a["emotion_by_hour"] == {"1970-01-01 00:00": {"angry": 1}, "1970-01-01 01:00": {"happy": 1, "sad": 1}}
    assert a["share_escalated"] == 0.25
    assert a["average_priority"] == 6.0
    assert a["average_wait_s"] == 20.0
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
    empty = caller_cues({}, [], load_policy().cues)
    assert empty["emotion"] == "unknown" and empty["suggestion"]
