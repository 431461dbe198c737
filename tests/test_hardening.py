"""The live path trusts nothing unverified and stays fast when what it depends on is slow (issue #17).

Real uvicorn, real redis-server processes, real Media Streams frames in Twilio's format, real audio.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
import uuid

import httpx
import numpy as np
import pytest
import redis
import websockets
import websockets.protocol
from twilio.request_validator import RequestValidator

from audio_models.audio_io import load_audio
from benchmarks.transcription_benchmark import INTENTS
from emoroute.app import create_app
from emoroute.redis_server import EmbeddedRedis, free_port
from emoroute.settings import Settings
from router import keys
from router.policy import load_policy
from telephony.credentials import stream_parameters
from telephony.media_stream import CONNECTED_MESSAGE, media_message, start_message
from tests.conftest import _ServerThread, make_settings
from tests.helpers import (
    ACCOUNT,
    HeldCall,
    announce,
    answer_identification,
    new_call_sid,
    signed_post,
    stream_call,
    wait_for,
)

SUPERVISOR = {"Authorization": "Bearer dev-supervisor-token"}
DEV_SECRET = "dev-secret-key-not-for-production"


def ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/twilio/stream"


def metric(server, line_start: str) -> float:
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def open_stream(url: str, call_sid: str, parameters: dict[str, str], *, account: str = ACCOUNT,
                      stream_sid: str | None = None) -> tuple[websockets.ClientConnection, str]:
    """Connect with a valid handshake signature (the same for every call) and send ``start``."""
    headers = {"X-Twilio-Signature": RequestValidator("dev-auth-token").compute_signature(url, {})}
    ws = await websockets.connect(url, additional_headers=headers, max_size=2**22)
    stream_sid = stream_sid or "MZ" + uuid.uuid4().hex
    await ws.send(CONNECTED_MESSAGE)
    await ws.send(start_message(call_sid=call_sid, stream_sid=stream_sid, account_sid=account,
                                custom_parameters=parameters))
    return ws, stream_sid


async def refused_with(ws: websockets.ClientConnection) -> tuple[int | None, str]:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        for seq in range(2, 200):
            await ws.send(media_message(stream_sid="MZ" + "0" * 32, sequence=seq, chunk=seq, timestamp_ms=seq * 20,
                                        payload=b"\xff" * 160))
            await asyncio.sleep(0.01)
    return closed.value.rcvd.code if closed.value.rcvd else None, closed.value.rcvd.reason if closed.value.rcvd else ""


def nothing_stored(redis_url: str, call_sid: str) -> bool:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = [k for k in r.scan_iter(f"emoroute:call:{{{call_sid}}}*") if not k.endswith((":announced", ":stream"))]
        return not stored and call_sid not in r.smembers(keys.calls_live()) and \
            r.zscore(keys.calls_index(), call_sid) is None
    finally:
        r.close()


# 1. Per-call stream credential ---------------------------------------------------------------

async def test_a_replayed_handshake_cannot_inject_a_call(live_server, redis_url):
    url = ws_url(live_server)
    announced = new_call_sid()
    params = await asyncio.to_thread(announce, url, announced)
    assert params["emoroute_token"] and params["emoroute_issued"].isdigit()
    cases = {
        # a CallSid no signed voice webhook announced: no credential at all
        "no_credential": (new_call_sid(), {"caller": "+15550009999"}, ACCOUNT),
        # the credential of another call
        "bad_credential": (new_call_sid(), params, ACCOUNT),
        # a well-formed credential (minted with the secret) for a call that was never announced
        "not_announced": (forged := new_call_sid(), stream_parameters(DEV_SECRET, account_sid=ACCOUNT,
                                                                     call_sid=forged), ACCOUNT),
        "wrong_account": (announced, params, "AC" + "9" * 32),
        "bad_sid": ("CA' or 1==1 or '", params, ACCOUNT),
    }
    for reason, (call_sid, parameters, account) in cases.items():
        ws, _ = await open_stream(url, call_sid, parameters, account=account)
        code, said = await refused_with(ws)
        await ws.close()
        assert (code, said) == (1008, reason), reason
        assert metric(live_server, f'emoroute_streams_refused_total{{reason="{reason}"}}') == 1.0
        if call_sid.startswith("CA") and len(call_sid) == 34:
            assert nothing_stored(redis_url, call_sid), reason
    assert len(live_server.actions.requests) == 0
    assert httpx.get(live_server.url + "/api/calls", headers=SUPERVISOR).json() == []


async def test_the_announced_call_streams_once_and_a_second_stream_is_refused(live_server, neutral_audio, redis_url):
    url = ws_url(live_server)
    with HeldCall(url, neutral_audio) as call:
        wait_for(lambda: httpx.get(f"{live_server.url}/api/calls/{call.sid}", headers=SUPERVISOR).status_code == 200,
                 what="first stream accepted")
        params = stream_parameters(DEV_SECRET, account_sid=ACCOUNT, call_sid=call.sid)
        ws, _ = await open_stream(url, call.sid, params)
        assert await refused_with(ws) == (1008, "duplicate_stream")
        await ws.close()
    assert metric(live_server, 'emoroute_streams_refused_total{reason="duplicate_stream"}') == 1.0


def test_voice_webhook_refuses_malformed_or_foreign_call_ids(live_server):
    for form in ({"CallSid": "CA-not-a-sid", "AccountSid": ACCOUNT},
                 {"CallSid": new_call_sid(), "AccountSid": "AC" + "5" * 32}):
        assert signed_post(live_server.url, live_server.url, "/twilio/voice", form).status_code == 400


# 2. A call with an agent stays with the agent -------------------------------------------------

async def test_a_call_taken_by_an_agent_is_never_requeued_or_redirected(live_server, neutral_audio, redis_url):
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    httpx.put(live_server.url + "/api/agents/agent-1", json={"name": "Ann", "skills": ["general"]},
              headers=SUPERVISOR).raise_for_status()
    cancel = load_audio(INTENTS / "u01.wav")  # "I want to cancel my account.": would re-route to retention
    gap = np.zeros(16000, dtype=np.float32)
    taken = threading.Event()
    sid = new_call_sid()

    async def after_pickup(ws, n):
        if n == len(neutral_audio) // 320 + 50:
            def take():
                wait_for(lambda: r.hget(keys.call(sid), "status") == "queued", what="decision")
                answer_identification(live_server.url, sid)  # the caller presses hash at the step
                wait_for(lambda: r.hget(keys.call(sid), "phase") == "queue", what="the queue phase")
                resp = httpx.post(live_server.url + "/api/agents/agent-1/next", headers=SUPERVISOR)
                assert resp.json()["call_sid"] == sid
                taken.set()
            await asyncio.to_thread(take)

    audio = np.concatenate([neutral_audio, np.zeros(32000, dtype=np.float32), cancel, gap, cancel, gap])
    await stream_call(ws_url(live_server), audio, call_sid=sid, inject=after_pickup, realtime=True, hold_seconds=2)
    assert taken.is_set()
    wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="call end")
    entries = [f for _, f in r.xrange(keys.timeline(sid))]
    types = [e["type"] for e in entries]
    assert types.count("decision") == 1 and "reroute" not in types and "reprioritise" not in types
    picked = types.index("pickup")
    later = [e for e in entries[picked:] if e["type"] in ("reading", "transcript") and e.get("transcript")]
    assert any("cancel" in e["transcript"].lower() for e in later), later  # still heard, still on the timeline
    assert r.hget(keys.call(sid), "agent") == "agent-1"
    assert [q.call_sid for q in live_server.actions.requests].count(sid) == 1  # the first redirect only
    assert all(r.zscore(keys.queue(q), sid) is None for q in ("retention", "sales", "general"))
    r.close()


async def test_taskrouter_assignment_keeps_the_call_with_the_agent(live_server, neutral_audio, redis_url):
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with HeldCall(ws_url(live_server), neutral_audio) as call:
        wait_for(lambda: r.hget(keys.call(call.sid), "status") == "queued", what="decision")
        form = {"EventType": "reservation.accepted", "AccountSid": ACCOUNT, "WorkerName": "bob",
                "TaskAttributes": json.dumps({"call_sid": call.sid, "queue": "general"})}
        assert signed_post(live_server.url, live_server.url, "/twilio/taskrouter", form).status_code == 204
        assert r.hget(keys.call(call.sid), "status") == "with_agent"
        assert r.hget(keys.call(call.sid), "agent") == "bob"
        assert r.zscore(keys.queue("general"), call.sid) is None
    r.close()


# 4. Nothing slow stalls routing ----------------------------------------------------------------

async def test_a_frozen_redis_never_stalls_routing_of_20_calls(server_factory, neutral_audio, angry_audio, tmp_path):
    rs = EmbeddedRedis(tmp_path / "redis-frozen", persist=False)
    rs.start()
    thread, server = server_factory(rs.url)
    # a call admitted before this process has seen Redis fail waits one Redis timeout for its claim
    bound = load_policy().decision.max_listen_seconds + server.settings.redis_timeout_s + 1.0
    started: dict[str, float] = {}
    audios = [neutral_audio, angry_audio]

    async def one(i: int) -> str:
        sid = new_call_sid()
        params = await asyncio.to_thread(announce, ws_url(server), sid)
        await asyncio.sleep(i * 0.1)
        started[sid] = time.time()
        return await stream_call(ws_url(server), audios[i % 2], call_sid=sid, parameters=params, realtime=True,
                                 hold_until=lambda s: any(q.call_sid == s for q in list(server.actions.requests)),
                                 max_hold_seconds=15)

    with thread:
        calls = asyncio.gather(*(one(i) for i in range(20)))
        await asyncio.sleep(1.0)
        assert rs.process is not None
        os.kill(rs.process.pid, signal.SIGSTOP)  # Redis stops answering, its socket stays open
        try:
            sids = await calls
            routed = {q.call_sid: q.at for q in server.actions.requests}
            assert set(sids) <= set(routed)
            late = {s: routed[s] - started[s] for s in sids if routed[s] - started[s] > bound}
            assert not late, late
            assert httpx.get(server.url + "/healthz", timeout=5).json()["status"] == "degraded"
        except BaseException:
            os.kill(rs.process.pid, signal.SIGCONT)
            rs.stop()
            raise
        os.kill(rs.process.pid, signal.SIGCONT)
        r = redis.Redis.from_url(rs.url, decode_responses=True)
        try:
            wait_for(lambda: all(r.hget(keys.call(s), "status") == "ended" for s in sids), timeout=30,
                     what="every call written once Redis answers")
            assert all(r.exists(keys.timeline(s)) for s in sids)
        finally:
            r.close()
            rs.stop()


class BlackHole:
    """A TCP server that accepts and never answers: a Twilio that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


async def test_a_twilio_that_never_answers_does_not_stop_new_calls(redis_url, emotion_model, whisper, tmp_path,
                                                                   neutral_audio):
    hole = BlackHole()
    port = free_port()
    settings = make_settings(redis_url, port, tmp_path, twilio_dry_run=False, twilio_timeout_s=1.0,
                             twilio_api_base=f"http://127.0.0.1:{hole.port}", twilio_max_concurrency=2)
    app = create_app(settings, emotion_model=emotion_model, transcriber=whisper)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with _ServerThread(app, port):
            url = f"ws://127.0.0.1:{port}/twilio/stream"
            sids = await asyncio.gather(*(stream_call(url, neutral_audio, hold_seconds=3, realtime=True)
                                          for _ in range(4)))
            for sid in sids:
                wait_for(lambda s=sid: r.hget(keys.call(s), "queue"), what="decision stored")
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            wait_for(lambda: 'emoroute_errors_total{where="twilio_rest"} 4.0' in
                     httpx.get(f"http://127.0.0.1:{port}/metrics").text, timeout=15, what="4 timed-out redirects")
            assert len(hole.conns) >= 2
    finally:
        r.close()
        hole.close()


# 6. Bounded per stream and per process -------------------------------------------------------

async def test_streams_beyond_the_cap_are_refused_and_idle_streams_closed(server_factory, redis_url, neutral_audio):
    thread, server = server_factory(redis_url, max_streams=1, stream_idle_seconds=1.5)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with thread:
        url = ws_url(server)
        with HeldCall(url, neutral_audio) as held:
            wait_for(lambda: r.hget(keys.call(held.sid), "status"), what="first call")
            sid = new_call_sid()
            params = await asyncio.to_thread(announce, url, sid)
            headers = {"X-Twilio-Signature": RequestValidator("dev-auth-token").compute_signature(url, {})}
            async with websockets.connect(url, additional_headers=headers) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1013, "capacity")
        assert metric(server, 'emoroute_streams_refused_total{reason="capacity"}') == 1.0
        wait_for(lambda: r.hget(keys.call(held.sid), "status") == "ended", what="first call over")
        idle = new_call_sid()
        params = await asyncio.to_thread(announce, url, idle)
        ws, _ = await open_stream(url, idle, params)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        await ws.close()
        wait_for(lambda: r.hget(keys.call(idle), "end_reason") == "idle_timeout", what="idle stream ended")
        assert metric(server, 'emoroute_streams_closed_total{reason="idle_timeout"}') == 1.0
    r.close()


async def test_a_flooding_socket_leaves_health_fast_and_other_calls_routed(server_factory, redis_url, angry_audio):
    thread, live_server = server_factory(redis_url, max_frames_per_second=200)
    with thread:
        await flood_while_a_call_routes(live_server, angry_audio)


async def flood_while_a_call_routes(live_server, angry_audio) -> None:
    url = ws_url(live_server)
    sid = new_call_sid()
    params = await asyncio.to_thread(announce, url, sid)
    flood, stream_sid = await open_stream(url, sid, params)
    big = media_message(stream_sid=stream_sid, sequence=2, chunk=1, timestamp_ms=0,
                        payload=b"\x7f" * (46 * 1024))  # about 64 KB of JSON, under the message cap
    assert 60 * 1024 < len(big) <= 64 * 1024
    stop = asyncio.Event()

    async def flooding() -> int:
        sent = 0
        with_closed = (websockets.ConnectionClosed, OSError)
        try:
            while not stop.is_set():
                await flood.send(big)
                sent += 1
                if sent % 20 == 0:
                    await asyncio.sleep(0)
        except with_closed:
            pass
        return sent

    def health_latencies() -> list[float]:
        out = []
        with httpx.Client(base_url=live_server.url) as client:
            for _ in range(20):
                t0 = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                out.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.1)
        return out

    flooder = asyncio.create_task(flooding())
    other = asyncio.create_task(stream_call(
        url, angry_audio, hold_until=lambda s: any(q.call_sid == s for q in list(live_server.actions.requests))))
    latencies = await asyncio.to_thread(health_latencies)
    routed_sid = await other
    stop.set()
    sent = await flooder
    await flood.close()
    assert sent > 100
    assert max(latencies) < 100, latencies
    assert any(q.call_sid == routed_sid for q in live_server.actions.requests)
    assert metric(live_server, 'emoroute_stream_rejected_total{reason="rate_limited"}') > 0
    assert metric(live_server, 'emoroute_stream_rejected_total{reason="oversize_payload"}') > 0


# 7. Dashboards and API -------------------------------------------------------------------------

def test_api_takes_the_bearer_header_only_and_dashboards_a_signed_expiring_session(live_server):
    base = live_server.url
    with httpx.Client(base_url=base) as client:
        page = client.get("/dashboard/supervisor?token=dev-supervisor-token", follow_redirects=False)
        client.cookies.clear()
        assert page.status_code == 303
        cookie = page.headers["set-cookie"]
        assert "emoroute_session=" in cookie and "HttpOnly" in cookie and "Max-Age=28800" in cookie
        assert "dev-supervisor-token" not in cookie  # the session is signed, not the token itself
        session = page.cookies["emoroute_session"]
        client.cookies.set("emoroute_session", session)
        assert client.get("/dashboard/api/wallboard").status_code == 200
        assert client.get("/api/calls").status_code == 401
        assert client.get("/api/calls?token=dev-supervisor-token").status_code == 401
        assert client.get("/api/calls", headers=SUPERVISOR).status_code == 200
        tampered = session[:-2] + ("00" if not session.endswith("00") else "11")
        with httpx.Client(base_url=base, cookies={"emoroute_session": tampered}) as other:
            assert other.get("/dashboard/api/wallboard").status_code == 401
        # an invalid ?token= next to a valid session sets no cookie
        bad = client.get("/dashboard/supervisor?token=nope", follow_redirects=False)
        assert bad.status_code == 401 and "set-cookie" not in bad.headers
        # logout is a POST (a link or image on another page cannot sign anyone out: #33)
        assert client.get("/dashboard/logout", follow_redirects=False).status_code == 405
        out = client.post("/dashboard/logout", follow_redirects=False)
        assert out.status_code == 303 and 'emoroute_session=""' in out.headers["set-cookie"]
        # non-ASCII tokens are simply wrong
    with httpx.Client(base_url=base) as client:
        for token in ("t\u00f6ken", "\u00e9\u00e9", "dev-supervisor-token\u00e9"):
            header = {"Authorization": f"Bearer {token}".encode()}
            assert client.get("/api/calls", headers=header).status_code == 401, token
            assert client.get("/dashboard/api/wallboard", headers=header).status_code == 401, token


def test_the_session_cookie_is_secure_behind_a_trusted_tls_proxy(server_factory, redis_url):
    def cookie(server, **headers: str) -> str:
        with httpx.Client(base_url=server.url) as client:
            return client.get("/dashboard/supervisor?token=dev-supervisor-token", follow_redirects=False,
                              headers=headers).headers["set-cookie"]

    thread, server = server_factory(redis_url, trusted_proxies="127.0.0.1")
    with thread:
        assert "Secure" in cookie(server, **{"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
        assert "Secure" not in cookie(server)
    thread, server = server_factory(redis_url, trusted_proxies="192.0.2.1")
    with thread:
        assert "Secure" not in cookie(server, **{"X-Forwarded-Proto": "https"})  # not from a trusted proxy


def test_failed_logins_are_rate_limited_per_client(server_factory, redis_url):
    thread, server = server_factory(redis_url, login_failures_per_minute=3)
    with thread, httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address="127.0.0.31")) as client:
        codes = [client.post("/dashboard/login", data={"token": f"guess{i}", "next": "/dashboard"}).status_code
                 for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        right = client.post("/dashboard/login", data={"token": "dev-supervisor-token"}, follow_redirects=False)
        assert right.status_code == 429  # even the right token waits out the minute
        assert metric(server, "emoroute_login_failures_total") == 3.0


def test_a_client_behind_the_proxy_cannot_choose_its_own_address(server_factory, redis_url, caplog):
    # the review's attack (#33): with TRUSTED_PROXIES "*", uvicorn took the leftmost X-Forwarded-For
    # entry, which the caller writes (nginx appends to it): 60 wrong logins got 401, never 429, and
    # an 8 KB string was logged as the client. Trusting only the proxy, the client is the hop it added.
    thread, server = server_factory(redis_url, login_failures_per_minute=3, trusted_proxies="127.0.0.2")
    proxy = httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with thread, proxy:
        codes = [proxy.post("/dashboard/login", data={"token": f"guess{i}"},
                            headers={"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.7"}).status_code
                 for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        # another real client behind the same proxy is not locked out by that one
        other = proxy.post("/dashboard/login", data={"token": "guess"}, headers={"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 401
        with caplog.at_level("WARNING", logger="emoroute.web.twilio"):
            proxy.post("/twilio/voice", data={"CallSid": "CA" + "0" * 32},
                       headers={"X-Forwarded-For": "A" * 8000 + ", 203.0.113.7"})
        refused = [r.getMessage() for r in caplog.records if "missing X-Twilio-Signature" in r.getMessage()]
        assert refused and "from 203.0.113.7:" in refused[-1] and "AAAA" not in refused[-1]


async def test_concurrent_guesses_on_two_processes_share_one_limit_on_redis_6_2(server_factory, redis_url):
    # the review's finding (#33): the shared count used `EXPIRE ... NX` (Redis 7), so on the embedded
    # Redis 6.2 the transaction aborted and each process counted alone; and guesses sent at once all
    # passed the check before any was counted
    assert redis.Redis.from_url(redis_url).info("server")["redis_version"].startswith("6.2")
    (thread_a, a), (thread_b, b) = (server_factory(redis_url, login_failures_per_minute=3) for _ in range(2))
    with thread_a, thread_b:
        for server in (a, b):  # each route's first request builds its form parser: not concurrently across
            # two servers in one test process (a race inside pydantic a real deployment never has)
            assert httpx.post(f"{server.url}/dashboard/login", data={"token": "dev-supervisor-token"},
                              follow_redirects=False).status_code == 303
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.32")) as client:
            replies = await asyncio.gather(*(client.post(f"{server.url}/dashboard/login", data={"token": f"g{i}"})
                                             for i, server in enumerate([a, b] * 6)))
        codes = sorted(r.status_code for r in replies)
        assert codes == [401] * 3 + [429] * 9, codes


def test_dashboard_pages_carry_csp_and_frame_denial(live_server):
    resp = httpx.get(live_server.url + "/dashboard/supervisor")
    csp = resp.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert resp.headers["x-frame-options"] == "DENY"


def test_one_redis_subscription_feeds_every_sse_client_and_users_are_capped(server_factory, redis_url):
    thread, server = server_factory(redis_url, sse_per_user=2)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with thread:
        streams = []
        with httpx.Client(base_url=server.url, headers=SUPERVISOR, timeout=10) as c1, \
                httpx.Client(base_url=server.url, headers=SUPERVISOR, timeout=10) as c2, \
                httpx.Client(base_url=server.url, headers=SUPERVISOR, timeout=10) as c3, \
                httpx.Client(base_url=server.url, headers={"Authorization": "Bearer dev-agent-token"},
                             timeout=10) as c4:
            for client, path in ((c1, "all"), (c2, "all"), (c4, "agent&id=agent-1")):
                cm = client.stream("GET", f"/dashboard/events?scope={path}")
                streams.append((cm, cm.__enter__()))
                assert streams[-1][1].status_code == 200
            assert c3.get("/dashboard/events?scope=all").status_code == 429  # a third for the supervisor
            wait_for(lambda: metric(server, "emoroute_sse_clients") == 3.0, what="three SSE clients")
            # one subscription for this process (a server the previous test stopped may take a moment to let go)
            wait_for(lambda: r.pubsub_numsub(keys.events_channel()) == [(keys.events_channel(), 1)],
                     what="one events subscription")
            r.publish(keys.events_channel(), json.dumps({"type": "started", "call_sid": new_call_sid(), "ts": 1}))
            lines = streams[0][1].iter_lines()
            assert any(line.startswith("event: started") for line in (next(lines) for _ in range(6)))
            for cm, _ in streams:
                cm.__exit__(None, None, None)
            # a client that went away frees its place
            wait_for(lambda: metric(server, "emoroute_sse_clients") == 0.0, what="clients gone")
            with c3.stream("GET", "/dashboard/events?scope=all") as again:
                assert again.status_code == 200
    r.close()


# 8. Webhooks -------------------------------------------------------------------------------

def test_unsigned_webhook_is_refused_before_its_body_is_read(live_server):
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        # promises 10 MB and sends 10 bytes: a server that read the body would wait for the rest
        sock.sendall(b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 10000000\r\n\r\nCallSid=CA")
        t0 = time.monotonic()
        reply = sock.recv(200)
    assert reply.startswith(b"HTTP/1.1 403") and time.monotonic() - t0 < 2


def test_an_oversized_signed_webhook_gets_413(live_server):
    form = {"CallSid": new_call_sid(), "AccountSid": ACCOUNT, "From": "x" * (70 * 1024)}
    assert signed_post(live_server.url, live_server.url, "/twilio/voice", form).status_code == 413


# 9. PII ---------------------------------------------------------------------------------

def test_the_callers_number_is_masked_in_logs(live_server, neutral_audio, caplog):
    caplog.set_level("INFO")
    number = "+15557654321"
    with HeldCall(ws_url(live_server), neutral_audio, caller=number) as call:
        wait_for(lambda: any(q.call_sid == call.sid for q in list(live_server.actions.requests)), what="routed")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert call.sid in text and "+1***21" in text
    assert number not in text and "7654321" not in text


def test_stream_credential_refuses_stale_tokens():
    from telephony.credentials import check_stream_start

    sid = new_call_sid()
    params = stream_parameters("k" * 40, account_sid=ACCOUNT, call_sid=sid, now=1000)
    common = {"expected_account_sid": ACCOUNT, "account_sid": ACCOUNT, "call_sid": sid,
              "stream_sid": "MZ" + "1" * 32, "parameters": params, "ttl_s": 600}
    assert check_stream_start("k" * 40, now=1500, **common).ok
    assert check_stream_start("k" * 40, now=1700, **common).reason == "expired_credential"
    assert check_stream_start("x" * 40, now=1500, **common).reason == "bad_credential"
    forged = {**params, "emoroute_issued": "1599"}
    assert check_stream_start("k" * 40, now=1700, **{**common, "parameters": forged}).reason == "bad_credential"


def test_enqueue_twiml_of_a_fallback_for_a_malformed_sid_is_refused(live_server):
    form = {"CallSid": "CA" + "z" * 32, "AccountSid": ACCOUNT}
    assert signed_post(live_server.url, live_server.url, "/twilio/fallback", form).status_code == 400


async def test_the_agent_card_follows_readings_from_the_events_without_rereading_redis(redis_url):
    import redis.asyncio as aioredis

    from dashboards.state import AgentView
    from router.policy import Decision
    from router.store import CallStore, Outbox, ReadingRecord

    policy = load_policy()
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = CallStore(client, outbox=Outbox(None), retention_s=60, seconds_per_point=60, queues=list(policy.queues))
    await store.desk.register_agent(agent_id="agent-1", name="Ann", skills=["general"])
    sid, other = new_call_sid(), new_call_sid()
    for s in (sid, other):
        await store.call_started(call_sid=s, stream_sid="MZ", caller="", started_at=time.time())
    await store.record_decision(call_sid=sid, decision=Decision("general", 3, "neutral tone", "tone"), t=1.0,
                                arrival=time.time(), latency_ms=1.0)
    view = AgentView(store, policy, "agent-1")
    assert (await view.reload())["cues"]["call_sid"] == sid and view.reloads == 1
    probs = {"angry": 0.9, "happy": 0.03, "neutral": 0.04, "sad": 0.03}
    record = ReadingRecord(t=4.0, kind="utterance", start_s=2.0, end_s=4.0, label="angry", probs=probs,
                           arousal=0.8, valence=-0.7, model="m", transcript="this is ridiculous",
                           intents=("complaint",))
    pubsub = store.events_pubsub()
    await pubsub.subscribe(store.events_channel)
    await store.add_reading(call_sid=sid, reading=record)
    await store.add_reading(call_sid=other, reading=record)
    events = []
    while len(events) < 2:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        if message:
            events.append(json.loads(message["data"]))
    card = await view.apply(events[0])
    assert card is not None and card["cues"]["emotion"] == "angry" and card["cues"]["intents"] == ["complaint"]
    assert card["cues"]["snippets"][-1]["text"] == "this is ridiculous"
    assert await view.apply(events[1]) is None  # another caller: nothing to do
    assert view.reloads == 1  # neither event read Redis
    assert card["cues"] == (await AgentView(store, policy, "agent-1").reload())["cues"] | {
        "updated_t": card["cues"]["updated_t"]}
    await pubsub.aclose()
    await client.aclose()


def test_a_session_expires_and_ends_when_its_token_or_the_secret_key_rotates():
    from emoroute.settings import Settings
    from emoroute.web.deps import Principal, principal_for_session, session_cookie

    settings = Settings(environment="development", session_max_age_s=3600)
    cookie = session_cookie(Principal("agent", "agent-1"), "dev-agent-token", settings, now=1000)
    assert principal_for_session(cookie, settings, now=4000) == Principal("agent", "agent-1")
    assert principal_for_session(cookie, settings, now=4601) is None  # expired
    rotated = Settings(environment="development", agent_tokens="agent-1=a-new-token")
    assert principal_for_session(cookie, rotated, now=2000) is None
    rekeyed = Settings(environment="development", secret_key="another-secret-key-of-32-characters")
    assert principal_for_session(cookie, rekeyed, now=2000) is None
    assert principal_for_session("garbage.\u00e9", settings) is None


async def test_a_stream_longer_than_the_maximum_call_duration_is_closed(server_factory, redis_url, neutral_audio):
    thread, server = server_factory(redis_url, max_call_seconds=2.0)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with thread:
        long_call = np.concatenate([neutral_audio] * 3)  # ~10 s, streamed at a caller's pace
        with pytest.raises(websockets.ConnectionClosed):
            await stream_call(ws_url(server), long_call, realtime=True)
        sid = r.zrevrange(keys.calls_index(), 0, 0)[0]
        wait_for(lambda: r.hget(keys.call(sid), "end_reason") == "max_duration", what="call closed at its limit")
        assert metric(server, 'emoroute_streams_closed_total{reason="max_duration"}') == 1.0
    r.close()


async def test_a_full_emotion_queue_drops_sliding_windows_never_an_utterance(emotion_model, angry_audio):
    from audio_models.pipeline import BatchingScorer, WorkDropped

    scorer = BatchingScorer(emotion_model, max_batch=4, max_wait_ms=1, max_pending=4)
    await scorer.start()
    try:
        windows = [asyncio.create_task(scorer.score(angry_audio[:48000], droppable=True)) for _ in range(12)]
        utterances = [asyncio.create_task(scorer.score(angry_audio)) for _ in range(6)]
        done = await asyncio.gather(*windows, *utterances, return_exceptions=True)
    finally:
        await scorer.stop()
    window_results, utterance_results = done[:12], done[12:]
    assert all(not isinstance(x, BaseException) and x.label for x in utterance_results)  # every utterance scored
    assert any(isinstance(x, WorkDropped) for x in window_results) and scorer.dropped > 0
    assert not [x for x in window_results if isinstance(x, BaseException) and not isinstance(x, WorkDropped)]


async def test_a_caller_who_refused_before_the_stream_connected_is_never_streamed(live_server, redis_url):
    url = ws_url(live_server)
    sid = new_call_sid()
    params = await asyncio.to_thread(announce, url, sid)
    # the opt-out key reaches the keypad webhook before Twilio's WebSocket does
    answer = signed_post(live_server.url, live_server.url, "/twilio/keypad?stage=listen",
                         {"CallSid": sid, "AccountSid": ACCOUNT, "Digits": "*"})
    assert answer.status_code == 200 and "<Stop><Stream name=\"emoroute\" /></Stop>" in answer.text
    ws, _ = await open_stream(url, sid, params)
    assert await refused_with(ws) == (1008, "opted_out")
    await ws.close()
    assert metric(live_server, 'emoroute_streams_refused_total{reason="opted_out"}') == 1.0
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert r.hget(keys.call(sid), "opted_out") == "1"
    assert [f["type"] for _, f in r.xrange(keys.timeline(sid))] == ["started", "opted_out"]
    r.close()


def test_call_flow_webhooks_answer_the_caller_while_redis_is_frozen(server_factory, tmp_path):
    rs = EmbeddedRedis(tmp_path / "redis-frozen-flow", persist=False)
    rs.start()
    thread, server = server_factory(rs.url)
    sid = new_call_sid()
    form = {"CallSid": sid, "AccountSid": ACCOUNT}
    with thread:
        os.kill(rs.process.pid, signal.SIGSTOP)
        try:
            for path, extra, expect in (
                    ("/twilio/keypad?stage=listen", {"Digits": "1"}, "/twilio/identify?step=0&amp;queue=retention"),
                    ("/twilio/keypad?stage=menu", {"Digits": "*"}, "<Stop><Stream"),
                    ("/twilio/identify?step=0&queue=sales&priority=5", {"Digits": "42#"}, "<Enqueue"),
                    ("/twilio/queue-result", {"QueueResult": "bridged"}, "/twilio/survey?attempt=0"),
                    ("/twilio/survey?attempt=0", {"Digits": "4"}, "Thank you for your feedback")):
                started = time.monotonic()
                resp = signed_post(server.url, server.url, path, {**form, **extra})
                took = time.monotonic() - started
                assert resp.status_code == 200 and expect in resp.text, (path, resp.text)
                assert took < 3 * 0.5 + 0.5, (path, took)  # at most three bounded store calls of 0.5 s each
        finally:
            os.kill(rs.process.pid, signal.SIGCONT)
    rs.stop()


async def test_sockets_that_never_start_lose_their_stream_slots(server_factory, redis_url, angry_audio):
    # the review's attack (#33): one captured handshake signature opens sockets that send `connected`
    # now and then and never `start`, holding every stream slot; a real caller's stream was refused
    thread, server = server_factory(redis_url, max_streams=2, stream_start_seconds=2.0)
    url = ws_url(server)
    headers = {"X-Twilio-Signature": RequestValidator("dev-auth-token").compute_signature(url, {})}
    with thread:
        idlers = [await websockets.connect(url, additional_headers=headers) for _ in range(2)]
        opened = time.monotonic()

        async def keep_alive(ws: websockets.ClientConnection) -> tuple[int | None, float]:
            try:
                while True:
                    await ws.send(CONNECTED_MESSAGE)
                    await asyncio.sleep(0.5)
            except websockets.ConnectionClosed as closed:
                return (closed.rcvd.code if closed.rcvd else None), time.monotonic() - opened

        closed = await asyncio.wait_for(asyncio.gather(*(keep_alive(ws) for ws in idlers)), 15)
        assert all(code == 1008 and 1.5 < after < 6 for code, after in closed), closed
        assert metric(server, 'emoroute_streams_closed_total{reason="no_start"}') == 2.0
        # the slots are free again: a real caller streams and is routed
        sid = await stream_call(url, angry_audio, hold_until=lambda s: any(
            q.call_sid == s for q in list(server.actions.requests)))
        assert any(q.call_sid == sid for q in server.actions.requests)


async def test_one_address_cannot_hold_the_stream_slots_with_sockets_that_never_start(
        server_factory, redis_url, angry_audio):
    # the review's attack (#33), within the start deadline: one address opens socket after socket
    # with a captured signature; past its cap of pending sockets it is refused before taking a slot,
    # and a caller from another address still streams and is routed
    thread, server = server_factory(redis_url, max_streams=6, max_pending_streams_per_client=3,
                                    stream_start_seconds=30.0)
    url = ws_url(server)
    headers = {"X-Twilio-Signature": RequestValidator("dev-auth-token").compute_signature(url, {})}
    with thread:
        idlers = [await websockets.connect(url, additional_headers=headers, local_addr=("127.0.0.1", 0))
                  for _ in range(6)]
        for ws in idlers[:3]:
            await ws.send(CONNECTED_MESSAGE)
        refused = []
        for ws in idlers[3:]:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            refused.append((closed.value.rcvd.code, closed.value.rcvd.reason) if closed.value.rcvd else None)
        assert refused == [(1013, "pending_cap")] * 3, refused
        assert metric(server, 'emoroute_streams_refused_total{reason="pending_cap"}') == 3.0
        for ws in idlers[:3]:
            assert ws.state is websockets.protocol.State.OPEN  # within its cap, still waiting
        sid = await stream_call(url, angry_audio, local_addr=("127.0.0.2", 0), hold_until=lambda s: any(
            q.call_sid == s for q in list(server.actions.requests)))
        assert any(q.call_sid == sid for q in server.actions.requests)
        for ws in idlers[:3]:
            await ws.close()


async def test_a_flooder_let_through_at_every_refill_is_still_closed(server_factory, redis_url):
    # the review's attack (#33): about 10x the message limit; the bucket refills every 1/rate s and
    # lets one message through, which reset the old "empty since" clock, so the flooder stayed open
    thread, server = server_factory(redis_url, max_frames_per_second=50)
    url = ws_url(server)
    with thread:
        sid = new_call_sid()
        params = await asyncio.to_thread(announce, url, sid)
        ws, stream_sid = await open_stream(url, sid, params)
        started, sent = time.monotonic(), 0
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while time.monotonic() - started < 12:
                await ws.send(media_message(stream_sid=stream_sid, sequence=sent + 2, chunk=sent + 1,
                                            timestamp_ms=sent * 20, payload=b"\xff" * 160))
                sent += 1
                await asyncio.sleep(0.002)  # ~500 messages a second
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, closed.value
        assert closed.value.rcvd.reason == "flooding"
        assert time.monotonic() - started < 6
        assert metric(server, 'emoroute_streams_closed_total{reason="flooding"}') == 1.0


def test_analytics_ranges_decades_wide_cost_no_more_than_the_retention_period(live_server):
    # the review's attack (#33): "?end=9999-12-31" took 19 s and "?start=1976-01-01" 73 s and 1.2 GB,
    # the event loop frozen for seconds; stored calls exist only within the retention period
    base = live_server.url
    for query in ("start=1976-01-01", "end=9999-12-31", "start=1976-01-01&end=9999-12-31"):
        started = time.perf_counter()
        answer = httpx.get(f"{base}/dashboard/api/analytics?{query}", headers=SUPERVISOR, timeout=60)
        assert answer.status_code == 200, answer.text
        assert time.perf_counter() - started < 5, query
    assert httpx.get(f"{base}/dashboard/api/analytics?start=0001-01-01", headers=SUPERVISOR,
                     timeout=60).status_code == 200
    assert httpx.get(f"{base}/dashboard/api/analytics.csv?start=1976-01-01", headers=SUPERVISOR,
                     timeout=60).status_code == 200


def test_the_access_log_keeps_no_token_and_no_callers_number(tmp_path):
    # the review's finding (#33): a "?token=" sign-in wrote the supervisor token into uvicorn's access
    # log, and an erasure the caller's whole number; `emoroute serve` as a real process, its log read back
    import subprocess
    import sys

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "EMOROUTE_PUBLIC_URL": base, "EMOROUTE_DATA_DIR": str(tmp_path / "data"),
           "EMOROUTE_TRANSCRIBER": "none"}
    env.pop("REDIS_URL", None)
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "emoroute.cli", "serve", "--dev", "--port", str(port)],
                                  env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: _healthy(base), timeout=90, what="emoroute serve")
            assert httpx.get(f"{base}/dashboard/supervisor?token=dev-supervisor-token",
                             follow_redirects=False).status_code == 303
            assert httpx.delete(f"{base}/api/callers/%2B447700900123", headers=SUPERVISOR).status_code == 200
            time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = log_path.read_text()
    assert "GET /dashboard/supervisor?token=[REDACTED]" in text, text[-2000:]
    assert "dev-supervisor-token" not in text
    assert "/api/callers/+4***23" in text and "447700900123" not in text


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_embedded_redis_wants_a_password_refuses_config_and_keeps_its_files_private(tmp_path):
    # the review's finding (#33): the embedded Redis listened without a password, let any local
    # process `CONFIG SET dir` anywhere, and wrote its files 0644
    server = EmbeddedRedis(tmp_path / "redis", hardened=True)
    url = server.start()
    try:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=server.port).ping()
        r = redis.Redis.from_url(url)
        assert r.set("emoroute:probe", "1") and r.ping()
        with pytest.raises(redis.ResponseError, match="unknown command"):
            r.config_set("dir", "/tmp")
        r.close()
        time.sleep(1.2)  # appendfsync everysec
        files = [p for p in (tmp_path / "redis").iterdir()]
        assert files and all(p.stat().st_mode & 0o077 == 0 for p in files), [oct(p.stat().st_mode) for p in files]
        assert (tmp_path / "redis").stat().st_mode & 0o077 == 0
    finally:
        server.stop()


async def test_a_replayed_webhook_of_an_erased_call_recreates_nothing(live_server, neutral_audio, redis_url):
    # the review's finding (#33): replaying an erased call's signed voice webhook re-created the call
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    url = ws_url(live_server)
    sid = await stream_call(url, neutral_audio, caller="+15550003131")
    wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="call end")
    assert httpx.delete(f"{live_server.url}/api/calls/{sid}", headers=SUPERVISOR).status_code == 200
    form = {"CallSid": sid, "AccountSid": ACCOUNT, "From": "+15550003131", "To": "+15550100000",
            "CallStatus": "ringing", "Direction": "inbound"}
    replay = signed_post(live_server.url, live_server.url, "/twilio/voice", form)
    assert replay.status_code == 200 and "<Stream" not in replay.text and "<Hangup" in replay.text
    assert not r.exists(keys.announced(sid)) and not r.exists(keys.call(sid))
    # nor does a replayed stream start (its credential still fresh) get in
    params = stream_parameters(DEV_SECRET, account_sid=ACCOUNT, call_sid=sid)
    ws, _ = await open_stream(url, sid, params)
    assert (await refused_with(ws))[0] == 1008
    assert not r.exists(keys.call(sid)) and not r.exists(keys.timeline(sid))
    r.close()


def test_a_keyed_call_whose_stream_never_started_gets_a_record_retention_and_erasure_reach(live_server, redis_url):
    # the review's finding (#33): a signed keypad or survey webhook for a call whose stream never
    # started created records with no TTL, queued but missing from the call index
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    sid = new_call_sid()
    form = {"CallSid": sid, "AccountSid": ACCOUNT, "Digits": "1"}
    assert signed_post(live_server.url, live_server.url, "/twilio/keypad?stage=menu", form).status_code == 200
    wait_for(lambda: r.zscore(keys.calls_index(), sid) is not None, what="the keyed call indexed")
    assert r.hget(keys.call(sid), "keypad") == "1" and r.hget(keys.call(sid), "queue")
    assert r.ttl(keys.call(sid)) > 0 and r.ttl(keys.timeline(sid)) > 0
    assert float(r.hget(keys.call(sid), "started_at")) > time.time() - 60  # analytics, retention, erasure find it
    r.close()


def test_forged_requests_cannot_write_lines_into_the_log_or_flood_it(live_server, caplog):
    # the review's finding (#33): a forged webhook logged 40 raw characters of CallSid (newlines
    # included) and every refused request wrote a WARNING (5,000 requests, 5,000 lines)
    forged = {"CallSid": "CA1\nINFO emoroute granted supervisor", "AccountSid": ACCOUNT}
    with caplog.at_level("WARNING"), httpx.Client(base_url=live_server.url) as client:
        for _ in range(200):
            assert client.post("/twilio/voice", data=forged, headers={"X-Twilio-Signature": "x"}).status_code == 403
    lines = [r.getMessage() for r in caplog.records if "forged X-Twilio-Signature" in r.getMessage()]
    assert 1 <= len(lines) <= 30, len(lines)
    assert all("\n" not in line and "CA1\\nINFO" in line for line in lines), lines[:1]
    assert metric(live_server, 'emoroute_signature_failures_total{endpoint="/twilio/voice"}') >= 200



def test_login_csrf_is_refused_and_production_serves_no_api_docs(live_server):
    # the review's informational findings (#33): a cross-site POST or ?token= link signed the victim
    # in as the attacker; /docs and /openapi.json (Swagger UI from a CDN) were open in production
    cross = {"Sec-Fetch-Site": "cross-site"}
    with httpx.Client(base_url=live_server.url) as client:
        form = client.post("/dashboard/login", data={"token": "dev-supervisor-token"}, headers=cross,
                           follow_redirects=False)
        link = client.get("/dashboard/supervisor?token=dev-supervisor-token", headers=cross, follow_redirects=False)
        assert form.status_code == link.status_code == 403
        assert "set-cookie" not in form.headers and "set-cookie" not in link.headers
        same = client.post("/dashboard/login", data={"token": "dev-supervisor-token"},
                           headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
        assert same.status_code == 303 and "emoroute_session=" in same.headers["set-cookie"]
        assert client.get("/openapi.json").status_code == 200  # development serves them
    production = Settings(twilio_auth_token="0f3a9c2b7d1e4f60a8b5", api_token="s3cret-supervisor-9x2",
                          agent_tokens="a1=s3cret-agent1-q7w", secret_key="4d1f9a07c2e85b36" * 3)
    app = create_app(production)
    assert app.openapi_url is None and app.docs_url is None and app.redoc_url is None


def test_a_signed_out_session_is_refused_everywhere_even_as_a_copied_cookie(server_factory, redis_url):
    # the review's finding (#33): logout did not end a session: a copied cookie worked for 8 h
    (thread_a, a), (thread_b, b) = (server_factory(redis_url) for _ in range(2))
    with thread_a, thread_b, httpx.Client(base_url=a.url) as browser:
        signed_in = browser.post("/dashboard/login", data={"token": "dev-supervisor-token"}, follow_redirects=False)
        cookie = signed_in.cookies["emoroute_session"]
        copies = [httpx.Client(base_url=s.url, cookies={"emoroute_session": cookie}) for s in (a, b)]
        assert all(c.get("/dashboard/api/wallboard").status_code == 200 for c in copies)
        assert browser.post("/dashboard/logout", follow_redirects=False).status_code == 303
        assert [c.get("/dashboard/api/wallboard").status_code for c in copies] == [401, 401]
        # a new sign-in is a new session
        again = browser.post("/dashboard/login", data={"token": "dev-supervisor-token"}, follow_redirects=False)
        with httpx.Client(base_url=b.url, cookies={"emoroute_session": again.cookies["emoroute_session"]}) as fresh:
            assert fresh.get("/dashboard/api/wallboard").status_code == 200
        for c in copies:
            c.close()


def test_bearer_token_guesses_are_limited_per_client(server_factory, redis_url):
    # the review's finding (#33): bearer-token guesses on /api/* were never limited or counted
    thread, server = server_factory(redis_url, login_failures_per_minute=3)
    local = httpx.HTTPTransport(local_address="127.0.0.33")
    with thread, httpx.Client(base_url=server.url, transport=local) as client:
        codes = [client.get("/api/calls", headers={"Authorization": f"Bearer guess-{i}"}).status_code for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        # past the limit even a right token waits out the minute from that address, not from others
        assert client.get("/api/calls", headers=SUPERVISOR).status_code == 429
        assert httpx.get(server.url + "/api/calls", headers=SUPERVISOR).status_code == 200


def test_one_supervisor_session_cannot_take_every_live_event_slot(server_factory, redis_url):
    # the review's finding (#33): supervisors share one identity, so one of them could take all its
    # live-event slots; signed-in browsers now hold slots per session
    thread, server = server_factory(redis_url, sse_per_user=1)
    with thread:
        sessions = []
        for _ in range(2):
            with httpx.Client(base_url=server.url) as login:
                signed = login.post("/dashboard/login", data={"token": "dev-supervisor-token"}, follow_redirects=False)
                sessions.append(httpx.Client(base_url=server.url, timeout=10,
                                             cookies={"emoroute_session": signed.cookies["emoroute_session"]}))
        first, second = sessions
        with first.stream("GET", "/dashboard/events?scope=all") as held:
            assert held.status_code == 200
            assert first.get("/dashboard/events?scope=all").status_code == 429  # this session's one slot
            with second.stream("GET", "/dashboard/events?scope=all") as other:
                assert other.status_code == 200  # another supervisor still gets live events
        for client in sessions:
            client.close()
