"""End to end: real uvicorn, real WebSocket frames in Twilio's format, real audio, real model, real Redis."""

import asyncio
import json
import re
import xml.etree.ElementTree as ET

import httpx
import numpy as np
import pytest
import redis
import websockets

from audio_models.audio_io import load_audio
from audio_models.trim import trim_silence
from benchmarks.transcription_benchmark import INTENTS
from emoroute.redis_server import EmbeddedRedis, free_port
from emoroute.simulate import SimTarget, routed_by, simulate_call
from router import keys
from tests.helpers import ACCOUNT, HeldCall, answer_identification, signed_post, stream_call, wait_for

SUPERVISOR = {"Authorization": "Bearer dev-supervisor-token"}
AGENT = {"Authorization": "Bearer dev-agent-token"}


def target(server) -> SimTarget:
    return SimTarget(url=server.url, public_url=server.url, auth_token="dev-auth-token",
                     api_token="dev-supervisor-token")


def ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/twilio/stream"


async def test_angry_caller_is_routed_to_retention_end_to_end(live_server, angry_audio, redis_url):
    summary = await simulate_call(target(live_server), angry_audio)
    sid = summary["call_sid"]
    assert summary["queue"] == "retention", summary
    assert 6 <= int(summary["priority"]) <= 10
    assert "angry" in summary["reason"] or "frustrated" in summary["reason"]
    assert float(summary["decision_latency_ms"]) > 0

    (request,) = [r for r in live_server.actions.requests if r.call_sid == sid]
    assert request.method == "POST"
    assert request.url == f"https://api.twilio.com/2010-04-01/Accounts/{live_server.settings.twilio_account_sid}/Calls/{sid}.json"
    # the redirect leads through identification (the route travels in its action URL) to the queue
    assert routed_by(request.form["Twiml"]) == ("retention", int(summary["priority"]))

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    entries = [fields for _, fields in r.xrange(keys.timeline(sid))]
    readings = [e for e in entries if e["type"] == "reading"]
    assert readings and {"t", "kind", "label", "probs", "arousal", "valence", "model"} <= set(readings[0])
    assert set(json.loads(readings[0]["probs"])) == {"angry", "happy", "neutral", "sad"}
    decisions = [e for e in entries if e["type"] == "decision"]
    assert decisions[0]["queue"] == "retention"
    wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="call end")
    r.close()


async def test_the_caller_keeps_being_heard_after_routing(live_server, angry_audio, redis_url):
    # Twilio's <Start><Stream> keeps streaming while the caller holds: speech after the decision
    # still reaches the trajectory (what agents see), and the simulator speaks the whole file.
    gap = np.zeros(16000, dtype=np.float32)
    audio = np.concatenate([trim_silence(angry_audio), gap, trim_silence(angry_audio), gap])
    summary = await simulate_call(target(live_server), audio, realtime=True)
    assert summary["frames_sent"] >= len(audio) // 320
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    sid = summary["call_sid"]
    wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="call end")
    entries = [fields for _, fields in r.xrange(keys.timeline(sid))]
    decided_at = float(next(e for e in entries if e["type"] == "decision")["t"])
    later = [e for e in entries if e["type"] == "reading" and e["kind"] == "utterance" and float(e["t"]) > decided_at]
    assert later, entries
    r.close()


async def test_calm_voice_saying_cancel_goes_to_retention_with_transcript_stored(live_server, redis_url):
    audio = load_audio(INTENTS / "u01.wav")  # espeak-ng, flat voice: "I want to cancel my account."
    summary = await simulate_call(target(live_server), audio)
    assert summary["queue"] == "retention", summary
    assert "said 'cancel'" in summary["reason"]
    assert "cancel" in summary["intents"].split(",")
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    utterances = [f for _, f in r.xrange(keys.timeline(summary["call_sid"]))
                  if f["type"] == "reading" and f["kind"] == "utterance"]
    assert "cancel" in utterances[0]["transcript"].lower() and "cancel" in utterances[0]["intents"]
    assert -1 <= float(utterances[0]["sentiment"]) <= 1
    r.close()


async def test_an_intent_no_phrase_names_is_understood_by_meaning_live(live_server, redis_url):
    audio = load_audio(INTENTS / "w09.wav")  # espeak-ng: "The engineer never turned up." (no policy phrase)
    summary = await simulate_call(target(live_server), audio)
    assert summary["queue"] == "retention", summary
    assert "said 'complaint'" in summary["reason"]
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    utterances = [f for _, f in r.xrange(keys.timeline(summary["call_sid"]))
                  if f["type"] == "reading" and f["kind"] == "utterance"]
    assert "engineer" in utterances[0]["transcript"].lower() and utterances[0]["intents"] == "complaint"
    r.close()


async def test_spoken_card_number_is_never_stored(live_server, redis_url):
    audio = load_audio(INTENTS / "u49.wav")  # "My card number is 4 1 1 1, 1 1 1 1, ... my email is john at ..."
    summary = await simulate_call(target(live_server), audio)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: r.hget(keys.call(summary["call_sid"]), "status") == "ended", what="call end")
    summary = r.hgetall(keys.call(summary["call_sid"]))
    entries = [f for _, f in r.xrange(keys.timeline(summary["call_sid"]))]
    transcripts = [e["transcript"] for e in entries if e.get("transcript")] + [summary.get("transcript", "")]
    stored = " | ".join(transcripts)
    assert any(tag in stored for tag in ("[CARD]", "[NUMBER]", "[PHONE]")), stored  # heard, and masked
    assert not re.search(r"\d(?:[\s,.-]*\d){5,}", stored), stored
    assert "1 1 1 1" not in stored and "one one one one" not in stored.lower()
    r.close()


async def test_neutral_caller_goes_to_general(live_server, neutral_audio):
    summary = await simulate_call(target(live_server), neutral_audio)
    assert summary["queue"] == "general", summary


def test_an_agent_takes_the_angrier_caller_first_though_they_rang_later(live_server, neutral_audio, angry_audio,
                                                                        redis_url):
    # the priority queues through the live server: both callers stay on the line, waiting
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    url = ws_url(live_server)
    with HeldCall(url, neutral_audio, caller="+15550002222") as calm:
        wait_for(lambda: r.hget(keys.call(calm.sid), "status") == "queued", what="the calm caller queued")
        with HeldCall(url, angry_audio, caller="+15550003333") as angry:
            wait_for(lambda: r.hget(keys.call(angry.sid), "status") == "queued", what="the angry caller queued")
            first, second = r.hgetall(keys.call(calm.sid)), r.hgetall(keys.call(angry.sid))
            assert (first["queue"], second["queue"]) == ("general", "retention")
            assert int(second["priority"]) > int(first["priority"])
            agents = f"{live_server.url}/api/agents/agent-1"
            assert httpx.put(agents, json={"name": "A", "skills": ["general", "retention"]},
                             headers=SUPERVISOR).status_code == 204
            # both callers key their account numbers; until then neither waits for an agent
            assert httpx.post(f"{agents}/next", headers=AGENT).json()["call_sid"] is None
            for call in (calm, angry):
                answer_identification(live_server.url, call.sid)
                wait_for(lambda c=call: r.hget(keys.call(c.sid), "phase") == "queue", what="the queue phase")
            taken = [httpx.post(f"{agents}/next", headers=AGENT).json()["call_sid"] for _ in range(3)]
            assert r.hget(keys.call(angry.sid), "status") == "with_agent"
    assert taken == [angry.sid, calm.sid, None]
    r.close()


def test_voice_webhook_answers_disclosure_stream_prompt_and_hold(live_server):
    form = {"CallSid": "CA" + "0" * 32, "From": "+15550001111", "To": "+15550100000", "AccountSid": "AC" + "0" * 32}
    resp = signed_post(live_server.url, live_server.url, "/twilio/voice", form)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(resp.text)
    verbs = [child.tag for child in root]
    assert verbs == ["Say", "Start", "Gather", "Redirect"]
    # the disclosure says how to refuse; the question is asked with the keypad open
    assert "analysed" in root[0].text and "press star" in root[0].text
    gather = root.find("Gather")
    assert gather.get("input") == "dtmf" and gather.get("numDigits") == "1"
    assert gather.get("action") == live_server.url + "/twilio/keypad?stage=listen"
    assert "why you are calling" in gather.find("Say").text
    stream = root.find("./Start/Stream")
    assert stream.get("url") == ws_url(live_server) and stream.get("track") == "inbound_track"
    assert stream.find("Parameter").get("value") == "+15550001111"
    assert root.find("Redirect").text == live_server.url + "/twilio/fallback"


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/status", "/twilio/fallback", "/twilio/keypad",
                                  "/twilio/identify", "/twilio/queue-result", "/twilio/survey"])
def test_forged_or_missing_signature_is_refused(live_server, path):
    form = {"CallSid": "CA" + "0" * 32, "CallStatus": "completed"}
    assert signed_post(live_server.url, live_server.url, path, form, token="wrong-token").status_code == 403
    assert signed_post(live_server.url, live_server.url, path, form, signature="").status_code == 403
    tampered = signed_post(live_server.url, live_server.url, path, form, signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert tampered.status_code == 403
    metrics = httpx.get(live_server.url + "/metrics").text
    assert f'emoroute_signature_failures_total{{endpoint="{path}"}} 3.0' in metrics


async def test_media_stream_with_forged_signature_is_refused(live_server, angry_audio):
    with pytest.raises(websockets.InvalidStatus) as exc:
        await stream_call(ws_url(live_server), angry_audio[:16000], token="wrong-token", parameters={})
    assert exc.value.response.status_code == 403


async def test_bad_frames_mid_call_are_counted_and_the_call_still_routes(live_server, angry_audio):
    async def misbehave(ws, n):
        if n == 10:
            await ws.send('{"event": "media", "media": {"payload": "%%%"}}')
            await ws.send('{"event": "hangup"}')
            await ws.send("not json at all")
            await ws.send("x" * (70 * 1024))
            await ws.send(b"\x00\x01binary")
            await ws.send('{"event": "media", "sequenceNumber": "2", "media": {"payload": "AAAA"}}')

    sid = await stream_call(ws_url(live_server), angry_audio, inject=misbehave, hold_seconds=2.0)
    def decided():
        call = httpx.get(f"{live_server.url}/api/calls/{sid}", headers=SUPERVISOR).json()
        return call if call.get("queue") else None

    call = wait_for(decided, what="routing decision")
    assert call["queue"] == "retention"
    metrics = httpx.get(live_server.url + "/metrics").text
    for reason in ("bad_base64", "unknown_event", "not_json", "oversize", "out_of_order"):
        assert f'emoroute_stream_rejected_total{{reason="{reason}"}}' in metrics, reason


async def test_socket_drop_mid_call_keeps_what_was_logged(live_server, angry_audio, redis_url):
    long_call = np.concatenate([angry_audio, angry_audio])
    frames = int(len(long_call) / 320 * 0.8)
    sid = await stream_call(ws_url(live_server), long_call, send_stop=False, stop_after_frames=frames)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="call ended after socket drop")
    assert r.hget(keys.call(sid), "end_reason") == "socket_closed"
    types = [f["type"] for _, f in r.xrange(keys.timeline(sid))]
    assert "reading" in types and "decision" in types and types[-1] == "ended"
    r.close()


def test_status_callback_ends_a_live_call(live_server, angry_audio, redis_url):
    async def hold_open():
        return await stream_call(ws_url(live_server), angry_audio[:8000], send_stop=False, hold_seconds=0)

    sid = asyncio.run(hold_open())
    resp = signed_post(live_server.url, live_server.url, "/twilio/status",
                       {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "CallStatus": "completed"})
    assert resp.status_code == 204
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="ended")
    r.close()


async def test_api_enforces_tokens_and_roles(live_server, neutral_audio):
    summary = await simulate_call(target(live_server), neutral_audio)
    sid = summary["call_sid"]
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        assert (await client.get("/api/calls")).status_code == 401
        assert (await client.get("/api/calls", headers={"Authorization": "Bearer nope"})).status_code == 401
        assert [c["call_sid"] for c in (await client.get("/api/calls", headers=SUPERVISOR)).json()] == [sid]
        assert (await client.get("/api/calls", headers=AGENT)).json() == []  # not this agent's call
        assert (await client.get(f"/api/calls/{sid}", headers=AGENT)).status_code == 404
        assert (await client.put("/api/agents/agent-1", json={"name": "A", "skills": ["general"]},
                                 headers=AGENT)).status_code == 403
        assert (await client.put("/api/agents/agent-1", json={"name": "A", "skills": ["general"]},
                                 headers=SUPERVISOR)).status_code == 204
        assert (await client.post("/api/agents/agent-2/next", headers=AGENT)).status_code == 403
        # an agent sees the queues they serve, without other callers' SIDs (security review, #33)
        assert set((await client.get("/api/queues", headers=SUPERVISOR)).json()) == {"retention", "sales", "general"}
        queues = (await client.get("/api/queues", headers=AGENT)).json()
        assert set(queues) == {"general"} and all("call_sid" not in c for c in queues["general"]["calls"])
        health = (await client.get("/healthz")).json()
        assert health["redis"] is True and health["status"] == "ok"


async def test_redis_down_call_still_routed_on_its_tone_then_trajectory_written(server_factory, angry_audio,
                                                                               tmp_path):
    # Redis is gone before the call rings: the voice webhook's announcement stays in this process,
    # which admits the stream, routes the caller on what it heard, and writes it all once Redis is back.
    port = free_port()
    rs = EmbeddedRedis(tmp_path / "redis-outage", port=port)
    rs.start()
    thread, server = server_factory(rs.url)
    with thread:
        rs.stop()
        def redirected(sid):
            return [r for r in server.actions.requests if r.call_sid == sid]

        sid = await stream_call(ws_url(server), angry_audio, hold_until=redirected)
        (request,) = redirected(sid)
        assert routed_by(request.form["Twiml"])[0] == "retention"
        assert httpx.get(server.url + "/healthz").json()["status"] == "degraded"
        assert httpx.get(server.url + "/api/calls", headers=SUPERVISOR).status_code == 503
        # the analytics and the CSV export read the history store: Redis down does not stop them
        figures = httpx.get(server.url + "/dashboard/api/analytics", headers=SUPERVISOR, timeout=30)
        assert figures.status_code == 200 and figures.json()["source"] == "history"
        assert httpx.get(server.url + "/dashboard/api/analytics.csv", headers=SUPERVISOR, timeout=30).status_code == 200
        rs = EmbeddedRedis(tmp_path / "redis-outage", port=port)
        rs.start()
        r = redis.Redis.from_url(rs.url, decode_responses=True)
        wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="outbox replayed")
        entries = [f for _, f in r.xrange(keys.timeline(sid))]
        decisions = [e for e in entries if e["type"] == "decision"]
        assert [d["queue"] for d in decisions] == ["retention"]
        types = [e["type"] for e in entries]
        assert types[0] == "started" and "reading" in types and types[-1] == "ended"
        assert types.index("reading") < types.index("decision")
        r.close()
    rs.stop()


async def test_rising_anger_while_waiting_raises_priority_and_the_taskrouter_task(server_factory, redis_url,
                                                                                   neutral_audio, angry_audio):
    workflow, workspace = "WW" + "1" * 32, "WS" + "2" * 32
    thread, server = server_factory(redis_url, twilio_workflow_sid=workflow, twilio_workspace_sid=workspace)
    r = redis.Redis.from_url(redis_url, decode_responses=True)

    def reprioritised(sid):
        return [f for _, f in r.xrange(keys.timeline(sid)) if f["type"] == "reprioritise"]

    calm_then_angry = np.concatenate([neutral_audio, angry_audio, angry_audio, angry_audio])
    with thread:
        sid = await stream_call(ws_url(server), calm_then_angry, hold_until=reprioritised)
        first = [f for _, f in r.xrange(keys.timeline(sid)) if f["type"] == "decision"][0]
        raised = reprioritised(sid)
        assert raised and int(raised[0]["priority"]) > int(first["priority"])
        assert "anger rising while waiting" in raised[0]["reason"]
        wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="call end")
        assert r.hget(keys.call(sid), "escalated") == "1"
        # the redirect asks for the account number; answering it queues the call as a TaskRouter task
        gather = ET.fromstring(server.actions.requests[0].form["Twiml"]).find("Gather")
        action = gather.get("action")
        form = {"CallSid": sid, "AccountSid": ACCOUNT, "Digits": "12345678"}
        answer = signed_post(server.url, server.url, action.removeprefix(server.url), form)
        enqueue = ET.fromstring(answer.text).find("Enqueue")
        assert enqueue.get("workflowSid") == workflow and enqueue.get("action").endswith("/twilio/queue-result")
        assert enqueue.find("Task").get("priority") == first["priority"]
        assert r.hget(keys.call(sid), "identified_account_number") == "1"
        assert "12345678" not in str(r.hgetall(keys.call(sid))) + str(r.xrange(keys.timeline(sid)))
        lookup, update = [q for q in server.actions.requests if q.call_sid == sid][1:3]
        assert (lookup.method, lookup.url) == ("GET", f"https://taskrouter.twilio.com/v1/Workspaces/{workspace}/Tasks")
        assert lookup.form["EvaluateTaskAttributes"] == f'call_sid == "{sid}"'
        assert update.method == "POST" and update.form == {"Priority": raised[0]["priority"]}
    r.close()


async def test_partial_transcript_reaches_the_agent_and_stands_in_for_a_late_final(server_factory, redis_url):
    # One unbroken utterance of ~5 s ("I want to cancel my account" then "I want to end my contract
    # with you"), streamed in real time. The final transcript is given 1 ms, so only the partial,
    # decoded while the caller was still speaking, can make the first decision hear "cancel".
    first, second = (trim_silence(load_audio(INTENTS / f"{u}.wav"), threshold_db=30) for u in ("u01", "u04"))
    speech = np.concatenate([first, second])
    thread, server = server_factory(redis_url, transcript_wait_ms=1, partial_transcript_s=1.5)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    events = r.pubsub()
    events.subscribe(keys.events_channel())
    with thread:
        summary = await simulate_call(target(server), speech, realtime=True)
    partials = []
    while (message := events.get_message(timeout=0.1)) is not None:
        if message["type"] == "message" and (e := json.loads(message["data"]))["type"] == "partial":
            partials.append(e)
    assert partials and partials[0]["call_sid"] == summary["call_sid"]
    assert "cancel" in partials[0]["transcript"].lower() and "cancel" in partials[0]["intents"]
    assert summary["queue"] == "retention" and "said 'cancel'" in summary["reason"], summary
    sid = summary["call_sid"]
    # the final transcript still lands in the trajectory, and the partial is cleared from the card
    wait_for(lambda: any(f.get("transcript") for _, f in r.xrange(keys.timeline(sid))), what="final transcript")
    assert r.hget(keys.call(sid), "partial_transcript") == ""
    events.close()
    r.close()


async def test_service_with_the_ecapa_whisper_backend_routes_an_angry_caller(server_factory, redis_url, angry_audio):
    from audio_models.emotion_types import FUSED_MODEL_DIR

    # the English fused model, the default until 2026-12-07, still serves when configured
    thread, server = server_factory(redis_url, own_model=True, emotion_backend="ecapa-whisper",
                                    emotion_model_dir=FUSED_MODEL_DIR)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with thread:
        summary = await simulate_call(target(server), angry_audio)
    assert summary["queue"] == "retention" and summary["model"].endswith("+whisper-head"), summary
    readings = [f for _, f in r.xrange(keys.timeline(summary["call_sid"])) if f["type"] == "reading"]
    assert readings and all(f["model"].endswith("+whisper-head") for f in readings)
    r.close()


async def test_a_policy_topic_reaches_the_agents_cue_and_routes_nothing(server_factory, redis_url, tmp_path):
    import yaml

    from dashboards.cues import caller_cues
    from router.policy import DEFAULT_POLICY_FILE, load_policy

    # a contact centre's own topic, with its cue first (none ships: docs/experiments/2026-11-29-hardship-cue-rule.md)
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    raw["text"]["topics"] = {"bereavement": ["wife died", "passed away"]}
    cue = "Caller mentioned a bereavement: a few warm words first."
    raw["cues"].insert(0, {"intent": "bereavement", "say": cue})
    raw["text"]["intent_model"]["training"] = str(DEFAULT_POLICY_FILE.parent / raw["text"]["intent_model"]["training"])
    path = tmp_path / "policy-with-topic.yaml"
    path.write_text(yaml.safe_dump(raw))
    # piper's joe through the phone line: "I need to tell you that my wife died last week."
    audio = load_audio(INTENTS.parent / "hardship_voices_3" / "hv34-piper-joe.wav")
    thread, server = server_factory(redis_url, policy_file=path)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with thread:
        summary = await simulate_call(target(server), audio)
    sid = summary["call_sid"]
    assert summary["intents"] == "bereavement", summary
    assert summary["rule"] not in ("text", "text+anger") and "bereavement" not in summary["reason"], summary
    timeline = [dict(f, probs=json.loads(f["probs"])) if "probs" in f else f for _, f in r.xrange(keys.timeline(sid))]
    card = caller_cues(r.hgetall(keys.call(sid)), timeline, load_policy(path).cues)
    assert card["suggestion"] == cue and card["intents"] == ["bereavement"]
    r.close()


async def test_a_late_transcript_reroutes_a_call_first_routed_on_tone(server_factory, redis_url):
    # a 1 ms transcript wait: the first decision is taken on tone alone, then the transcript
    # ("Could you close down my broadband account please?", piper's joe through the phone line)
    # re-routes the caller to retention before any agent answers, and the timeline says why
    from tests.conftest import REPO

    audio = load_audio(REPO / "benchmarks" / "data" / "intents_eval" / "c06-piper-joe.wav")
    thread, server = server_factory(redis_url, transcript_wait_ms=1.0)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with thread:
        # the caller stays on the line (silence) until the re-route: a caller who hung up is not re-routed
        sid = await stream_call(ws_url(server), audio, max_hold_seconds=60.0, hold_until=lambda s: any(
            f["type"] == "reroute" for _, f in r.xrange(keys.timeline(s))))
        metrics = httpx.get(server.url + "/metrics").text
    # the words that came too late for the first decision are still timed from the end of the utterance
    assert 'emoroute_first_words_seconds_count{language="en"} 1.0' in metrics, metrics
    # the call's audio went through the VAD (every call's chunks scored together) and the process reports its CPU
    samples = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#"))
    assert float(samples["emoroute_vad_chunks_scored"]) >= len(audio) // 512
    assert 1 <= float(samples["emoroute_vad_runs"]) <= float(samples["emoroute_vad_chunks_scored"])
    assert float(samples["process_cpu_seconds_total"]) > 0
    entries = [f for _, f in r.xrange(keys.timeline(sid))]
    first = next(e for e in entries if e["type"] == "decision")
    reroute = next(e for e in entries if e["type"] == "reroute")
    assert first["queue"] != "retention" and "said" not in first["reason"], first
    assert reroute["queue"] == "retention" and "late transcript" in reroute["reason"], reroute
    assert first["reason"] in reroute["reason"]  # the timeline names the tone decision it replaced
    assert r.hget(keys.call(sid), "queue") == "retention" and r.hget(keys.call(sid), "rerouted") == "1"
    r.close()
