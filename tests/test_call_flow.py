"""The call flow through the real server and a real redis-server, every Twilio callback signed.

Call phases recorded in order, a keypad choice routing, the keypad menu when nothing usable is
heard, an opt-out that leaves no analysis of the call, and a survey score reaching analytics.
"""

import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from audio_models.audio_io import load_audio
from emoroute.simulate import CallerScript, SimTarget, simulate_call
from router import keys
from router.policy import load_policy
from tests.helpers import ACCOUNT, new_call_sid, signed_post, wait_for

SUPERVISOR = {"Authorization": "Bearer dev-supervisor-token"}
ANALYSED = ("emotion", "first_emotion", "first_valence", "last_valence", "transcript", "intents", "phase_stats",
            "peak_anger", "model")


def target(server) -> SimTarget:
    return SimTarget(url=server.url, public_url=server.url, auth_token="dev-auth-token",
                     api_token="dev-supervisor-token")


def timeline(r: redis.Redis, sid: str) -> list[dict[str, str]]:
    return [f for _, f in r.xrange(keys.timeline(sid))]


def assert_nothing_analysed(redis_url: str, sid: str) -> None:
    """Once the call has ended: no reading or transcript in its timeline, no analysed summary field."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="call end")
        assert not [e for e in timeline(r, sid) if e["type"] in ("reading", "transcript")]
        assert not set(ANALYSED) & set(r.hgetall(keys.call(sid)))
    finally:
        r.close()


async def test_a_whole_call_is_tagged_with_its_phases_and_its_survey_score_reaches_analytics(
        live_server, redis_url, angry_audio, neutral_audio):
    script = CallerScript(account_digits="12345678", agent="agent-7", agent_audio=neutral_audio, survey_score="2")
    summary = await simulate_call(target(live_server), angry_audio, script=script)
    sid = summary["call_sid"]
    # Twilio's side, in order: the question, identification, TaskRouter's assignment, the agent leg's
    # end (the <Enqueue> action), the survey key, the status callback
    assert [s.split(" ")[0] for s in summary["steps"]] == [
        "voice", "identify", "taskrouter", "queue-result", "survey", "status"], summary["steps"]
    assert summary["queue"] == "retention" and summary["csat"] == "2" and summary["agent"] == "agent-7"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="call end")
    entries = timeline(r, sid)
    phases = [e["phase"] for e in entries if e["type"] == "phase"]
    assert phases == ["identification", "queue", "agent", "survey"], phases
    # the wait starts when identification is over, not at the decision
    decided, enqueued, picked = (float(r.hget(keys.call(sid), k)) for k in ("decided_at", "enqueued_at", "picked_at"))
    assert decided < enqueued < picked
    starts = [float(e["t"]) for e in entries if e["type"] == "phase"]
    assert starts == sorted(starts)
    # every reading carries the phase it was heard in; the caller spoke while greeting and with the agent
    readings = [e for e in entries if e["type"] == "reading"]
    assert readings and all(e.get("phase") for e in readings)
    heard_in = {e["phase"] for e in readings}
    assert {"greeting", "agent"} <= heard_in, heard_in
    for e in readings:  # a reading's phase is the one its middle fell in
        middle = (float(e["start"]) + float(e["end"])) / 2
        started = [(float(p["t"]), p["phase"]) for p in entries if p["type"] == "phase" and float(p["t"]) <= middle]
        assert e["phase"] == (started[-1][1] if started else "greeting")
    assert [e["type"] for e in entries if e["type"] in ("survey", "agent_leg_ended")] == ["agent_leg_ended", "survey"]
    call = r.hgetall(keys.call(sid))
    assert "12345678" not in str(call) + str(entries)  # what the caller keyed is never stored
    assert call["identified_account_number"] == "1" and call["caller_hash"] and "+1555" not in call["caller_hash"]
    stats = __import__("json").loads(call["phase_stats"])
    assert set(stats) == heard_in and all(n >= 1 for n, _, _ in stats.values())
    figures = httpx.get(live_server.url + "/dashboard/api/analytics", headers=SUPERVISOR).json()
    assert figures["csat"]["answered"] >= 1 and figures["csat"]["distribution"]["2"] >= 1
    assert {"greeting", "agent"} <= set(figures["phases"]["all"])
    assert any(p["call_sid"] == sid and p["csat"] == 2 for p in figures["csat"]["points"])
    csv = httpx.get(live_server.url + "/dashboard/api/analytics.csv", headers=SUPERVISOR).text
    header, *lines = csv.splitlines()
    row = dict(zip(header.split(","), next(line for line in lines if line.startswith(sid)).split(","), strict=False))
    assert row["csat"] == "2" and row["greeting_anger"] and row["agent_valence"]
    r.close()


async def test_a_key_pressed_during_the_question_routes_the_call(live_server, redis_url, neutral_audio):
    summary = await simulate_call(target(live_server), neutral_audio, script=CallerScript(key="3", key_after_s=0.4))
    sid = summary["call_sid"]
    assert summary["queue"] == "sales" and summary["rule"] in ("keypad", "keypad+anger"), summary
    assert summary["keypad"] == "3" and "pressed 3 (purchase)" in summary["reason"]
    assert "purchase" in summary["intents"].split(",")  # the stated intent, for the agent's card
    assert summary["steps"][1].startswith("keypad") and summary["steps"][2].startswith("identify")
    # the keypad webhook answered Twilio itself: the coordinator never redirected the call
    assert not [q for q in live_server.actions.requests if q.call_sid == sid]
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    entries = timeline(r, sid)
    assert [e["key"] for e in entries if e["type"] == "key"] == ["3"]
    decisions = [e for e in entries if e["type"] == "decision"]
    assert len(decisions) == 1 and decisions[0]["queue"] == "sales"
    assert [e["phase"] for e in entries if e["type"] == "phase"][:2] == ["identification", "queue"]
    r.close()


async def test_nothing_usable_heard_offers_the_keypad_menu_which_routes(live_server, redis_url):
    silence = np.zeros(16000 * 8, dtype=np.float32)
    summary = await simulate_call(target(live_server), silence, script=CallerScript(menu_key="1"))
    sid = summary["call_sid"]
    (redirect,) = [q for q in live_server.actions.requests if q.call_sid == sid]
    menu = ET.fromstring(redirect.form["Twiml"]).find("Gather")
    assert menu.get("action").endswith("/twilio/keypad?stage=menu")
    assert "Press 1 to cancel or leave us." in menu.find("Say").text
    assert summary["queue"] == "retention" and summary["priority"] == "7" and summary["keypad"] == "1"
    # no key at the menu: the default queue, recorded as such
    quiet = await simulate_call(target(live_server), silence)
    assert quiet["queue"] == "general" and "keypad" not in quiet and quiet["steps"][-2].startswith("keypad")
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert [e["phase"] for e in timeline(r, quiet["call_sid"]) if e["type"] == "phase"] == ["queue"]
    r.close()


def test_the_fallback_and_unknown_keys_offer_the_menu_again(live_server):
    sid = new_call_sid()
    form = {"CallSid": sid, "AccountSid": ACCOUNT}
    for path, extra in (("/twilio/fallback", {}), ("/twilio/keypad?stage=menu", {"Digits": "9"})):
        resp = signed_post(live_server.url, live_server.url, path, {**form, **extra})
        gather = ET.fromstring(resp.text).find("Gather")
        assert resp.status_code == 200 and gather.get("action").endswith("/twilio/keypad?stage=menu")
        enqueue = ET.fromstring(resp.text).find("Enqueue")  # and no key at all still reaches a queue
        assert enqueue.text == "general"
    assert "not on the menu" in ET.fromstring(resp.text).find("Say").text
    survey = signed_post(live_server.url, live_server.url, "/twilio/survey?attempt=0", {**form, "Digits": "8"})
    assert ET.fromstring(survey.text).find("Gather").get("action").endswith("/twilio/survey?attempt=1")
    bad = signed_post(live_server.url, live_server.url, "/twilio/identify?step=0&queue=nowhere&priority=5", form)
    assert bad.status_code == 400


def test_the_language_check_keeps_the_language_or_goes_on_in_english_on_the_key(live_server, redis_url):
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    path = "/twilio/language?queue=retention&priority=7&language=es&then=queue"
    kept_sid, english_sid = new_call_sid(), new_call_sid()
    kept = signed_post(live_server.url, live_server.url, path, {"CallSid": kept_sid, "AccountSid": ACCOUNT})
    # (the task's language and skill with a TaskRouter workflow: test_language_flow)
    root = ET.fromstring(kept.text)
    assert kept.status_code == 200 and root.find("Enqueue").text == "retention"
    assert root.find("Say").get("language") == "es-ES"  # the Spanish hold message
    english = signed_post(live_server.url, live_server.url, path,
                          {"CallSid": english_sid, "AccountSid": ACCOUNT, "Digits": "2"})
    root = ET.fromstring(english.text)
    assert root.find("Enqueue").text == "retention"
    assert root.find("Say").text == load_policy().prompts.hold and root.find("Say").get("language") is None
    # no process holds these calls: the web process stores the answer itself
    wait_for(lambda: r.hget(keys.call(english_sid), "language") == "en", what="language stored")
    check = next(e for e in timeline(r, english_sid) if e["type"] == "language_check")
    assert (check["language"], check["english"]) == ("es", "1")
    wait_for(lambda: r.hget(keys.call(kept_sid), "language_check") == "kept", what="kept stored")
    assert r.hget(keys.call(kept_sid), "language") is None
    # a Polish caller taken for Spanish keys Polish: the Polish skill and hold message, the language stored as keyed
    polish_sid = new_call_sid()
    polish_key = load_policy().languages.routes["pl"].key
    polish = signed_post(live_server.url, live_server.url, path,
                         {"CallSid": polish_sid, "AccountSid": ACCOUNT, "Digits": polish_key})
    root = ET.fromstring(polish.text)
    assert root.find("Enqueue").text == "retention" and root.find("Say").get("language") == "pl-PL"  # Polish hold
    wait_for(lambda: r.hget(keys.call(polish_sid), "language") == "pl", what="keyed language stored")
    stored = [(e["language"], e["route"]) for e in timeline(r, polish_sid) if e["type"] == "language"]
    assert stored == [("pl", "keyed")]
    assert (r.hget(keys.call(polish_sid), "language_check"), r.hget(keys.call(polish_sid), "language_checked")) == (
        "pl", "es")
    check = next(e for e in timeline(r, polish_sid) if e["type"] == "language_check")
    assert (check["language"], check["english"], check["keyed"]) == ("es", "0", "pl")
    # a key no language has (0) keeps Spanish
    other = signed_post(live_server.url, live_server.url, path, {"CallSid": new_call_sid(), "AccountSid": ACCOUNT,
                                                                 "Digits": "0"})
    assert ET.fromstring(other.text).find("Say").get("language") == "es-ES"
    # Spanish's own key keeps Spanish, counted as kept (like no key)
    own = signed_post(live_server.url, live_server.url, path, {"CallSid": new_call_sid(), "AccountSid": ACCOUNT,
                                                               "Digits": load_policy().languages.routes["es"].key})
    assert ET.fromstring(own.text).find("Say").get("language") == "es-ES"
    metrics = httpx.get(live_server.url + "/metrics").text
    assert 'emoroute_keypad_total{result="kept",stage="language"} 2.0' in metrics
    assert 'emoroute_keypad_total{result="english",stage="language"} 1.0' in metrics
    assert 'emoroute_keypad_total{result="switched",stage="language"} 1.0' in metrics
    assert 'emoroute_keypad_total{result="other_key",stage="language"} 1.0' in metrics
    for bad in ("/twilio/language?queue=nowhere&priority=7&language=es&then=queue",
                "/twilio/language?queue=retention&priority=7&language=en&then=queue",
                "/twilio/language?queue=retention&priority=7&language=Spanish&then=queue",
                "/twilio/language?queue=retention&priority=7&language=es&then=survey"):
        assert signed_post(live_server.url, live_server.url, bad, {"CallSid": kept_sid, "AccountSid": ACCOUNT}
                           ).status_code == 400, bad
    r.close()


async def test_an_opt_out_stops_the_stream_and_leaves_no_analysis_of_the_call(live_server, redis_url, angry_audio):
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    # decided on what the caller said (readings and transcripts stored), then "*" at identification
    summary = await simulate_call(target(live_server), np.concatenate([angry_audio, angry_audio]),
                                  script=CallerScript(account_digits="*"))
    sid = summary["call_sid"]
    # the angry tone: retention, or general at the anger priority under retention_min_anger
    assert (summary["queue"] == "retention" or int(summary["priority"]) >= 6) and summary["opted_out"] == "1"
    wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="call end")
    call = r.hgetall(keys.call(sid))
    assert not set(ANALYSED) & set(call), call
    assert call["reason"] == "caller opted out of analysis" and call["opted_out_via"] == "key"
    entries = timeline(r, sid)
    assert not [e for e in entries if e["type"] in ("reading", "transcript", "decision")], entries
    assert not any("probs" in e or "transcript" in e or "tone" in e.get("reason", "") for e in entries)
    assert [e["type"] for e in entries][:2] == ["started", "opted_out"] and entries[-1]["type"] == "ended"
    metrics = httpx.get(live_server.url + "/metrics").text
    assert "emoroute_opt_outs_total 1.0" in metrics
    figures = httpx.get(live_server.url + "/dashboard/api/analytics", headers=SUPERVISOR).json()
    assert figures["opt_outs"]["calls"] >= 1
    # the answer to Twilio stopped the stream and confirmed before queueing
    answer = signed_post(live_server.url, live_server.url, "/twilio/identify?step=0&queue=retention&priority=7",
                         {"CallSid": sid, "AccountSid": ACCOUNT, "Digits": "*"})
    root = ET.fromstring(answer.text)
    assert [v.tag for v in root][:3] == ["Stop", "Say", "Say"] and root.find("Stop/Stream").get("name") == "emoroute"
    assert root.find("Enqueue").text == "retention"
    r.close()


async def test_an_opt_out_key_during_the_question_is_answered_with_the_menu(live_server, redis_url, neutral_audio):
    summary = await simulate_call(target(live_server), neutral_audio,
                                  script=CallerScript(key="*", key_after_s=0.4, menu_key="0"))
    sid = summary["call_sid"]
    assert summary["opted_out"] == "1" and summary["queue"] == "general" and summary["keypad"] == "0"
    assert_nothing_analysed(redis_url, sid)


@pytest.mark.parametrize("voice", ["slt", "awb"])
async def test_saying_no_analysis_opts_out_before_any_reading_is_kept(live_server, redis_url, voice):
    # two natural TTS voices (flite slt and awb) say "No analysis, please. I just want to check my bill."
    audio = load_audio(Path(__file__).parent / "data" / f"opt-out-{voice}.wav")
    summary = await simulate_call(target(live_server), audio, script=CallerScript(menu_key="2"))
    sid = summary["call_sid"]
    assert summary["opted_out"] == "1" and summary["opted_out_via"] == "speech", summary
    assert summary["queue"] == "retention" and summary["keypad"] == "2"  # routed by the menu key
    (redirect,) = [q for q in live_server.actions.requests if q.call_sid == sid]
    root = ET.fromstring(redirect.form["Twiml"])
    assert root[0].tag == "Stop" and "Nothing more of this call will be analysed" in root[1].text
    assert_nothing_analysed(redis_url, sid)


@pytest.mark.parametrize("where", ["queued", "with the agent"])
async def test_saying_no_analysis_later_stops_only_the_stream(live_server, redis_url, angry_audio, where):
    # routed on tone first; then "No analysis, please..." (flite slt) while queued or talking to the
    # agent: the stream is stopped through Twilio's Stream resource, and the call is not redirected,
    # so the caller keeps their place in the queue or their conversation
    refusal = load_audio(Path(__file__).parent / "data" / "opt-out-slt.wav")
    if where == "queued":
        audio = np.concatenate([angry_audio, np.zeros(16000, dtype=np.float32), refusal])
        script = CallerScript(account_digits="12345678", queue_wait_s=30.0)  # then hangs up in the queue
    else:  # the refusal is said to the agent; then the survey, listened to for 30 s of call time
        audio = angry_audio
        script = CallerScript(account_digits="12345678", agent="agent-7", agent_audio=refusal, survey_score="4",
                              survey_s=30.0)
    # at the caller's pace: streamed all at once, the refusal can be heard before the first decision
    summary = await simulate_call(target(live_server), audio, script=script, realtime=where == "queued")
    sid = summary["call_sid"]
    assert summary["opted_out"] == "1" and summary["opted_out_via"] == "speech", summary
    # routed on the angry tone: retention, or general at the anger priority when the evidence fell
    # short of emotion_routing.retention_min_anger; the refusal moves neither
    assert summary["queue"] == "retention" or int(summary["priority"]) >= 6, summary
    requests = [q for q in live_server.actions.requests if q.call_sid == sid]
    assert [q.url.rsplit("/", 2)[-2:] for q in requests] == [["Calls", f"{sid}.json"], ["Streams", "emoroute.json"]]
    assert requests[1].form == {"Status": "stopped"}
    assert "<Stop>" not in requests[0].form["Twiml"]  # the one redirect is the first route, before the refusal
    assert_nothing_analysed(redis_url, sid)
