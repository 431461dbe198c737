"""Scale-out with real processes: two `emoroute serve` web processes and two `emoroute worker`s on one
real redis-server, driven as Twilio drives them, with kill -9 faults (issue #18)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
import websockets
from twilio.request_validator import RequestValidator

from audio_models.audio_io import load_audio
from benchmarks.transcription_benchmark import INTENTS
from emoroute.redis_server import EmbeddedRedis, free_port
from router import keys
from tests.conftest import REPO
from tests.helpers import ACCOUNT, new_call_sid, stream_call, wait_for

pytestmark = pytest.mark.timeout(300)
PUBLIC = "http://emoroute.test"  # what Twilio signs; the load balancer's address in production
TOKEN = "dev-auth-token"


@dataclass
class Cluster:
    redis_url: str
    tmp: Path
    web: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list = field(default_factory=list)

    def env(self, name: str) -> dict[str, str]:
        return {**{k: v for k, v in os.environ.items() if not k.startswith("EMOROUTE_")},
                "REDIS_URL": self.redis_url, "EMOROUTE_ENVIRONMENT": "development",
                "EMOROUTE_PUBLIC_URL": PUBLIC, "EMOROUTE_ASR_MODE": "redis", "EMOROUTE_ASR_CLAIM_IDLE_MS": "1500",
                "EMOROUTE_PROCESS_LEASE_S": "2", "EMOROUTE_MAX_FRAMES_PER_SECOND": "10000",
                "EMOROUTE_DATA_DIR": str(self.tmp / name), "PYTHONUNBUFFERED": "1"}

    def start_web(self, name: str) -> None:
        port = free_port()
        log = (self.tmp / f"{name}.log").open("wb")
        self.logs.append(log)
        self.web[name] = subprocess.Popen([sys.executable, "-m", "emoroute.cli", "serve", "--port", str(port)],
                                          cwd=REPO, env=self.env(name), stdout=log, stderr=subprocess.STDOUT)
        self.ports[name] = port

    def start_worker(self, name: str) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.logs.append(log)
        self.workers[name] = subprocess.Popen([sys.executable, "-m", "emoroute.cli", "worker", "--id", name],
                                              cwd=REPO, env=self.env(name), stdout=log, stderr=subprocess.STDOUT)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        for name, proc in self.web.items():
            while True:
                assert proc.poll() is None, (self.tmp / f"{name}.log").read_text()[-3000:]
                try:
                    if httpx.get(self.url(name) + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{name} did not start"
                time.sleep(0.5)
        r = self.client()
        try:
            wait_for(lambda: all(r.exists(keys.worker(n)) for n in self.workers), timeout=120, what="workers up")
        finally:
            r.close()

    def client(self) -> redis.Redis:
        """Return a client of the deployment's Redis (str replies)."""
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def health(self, name: str) -> dict:
        return httpx.get(self.url(name) + "/healthz", timeout=5).json()

    def stop(self) -> None:
        for proc in [*self.web.values(), *self.workers.values()]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.web.values(), *self.workers.values()]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.logs:
            log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    server = EmbeddedRedis(tmp / "redis", persist=False)
    server.start()
    c = Cluster(server.url, tmp)
    for name in ("web-a", "web-b"):
        c.start_web(name)
    for name in ("worker-1", "worker-2"):
        c.start_worker(name)
    try:
        c.wait_ready()
        yield c
    finally:
        c.stop()
        server.stop()


def announce(cluster: Cluster, web: str, call_sid: str) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    form = {"CallSid": call_sid, "AccountSid": ACCOUNT, "From": "+15550001111", "To": "+15550100000"}
    sig = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/voice", form)
    resp = httpx.post(cluster.url(web) + "/twilio/voice", data=form, headers={"X-Twilio-Signature": sig}, timeout=30)
    resp.raise_for_status()
    stream = ET.fromstring(resp.text).find("./Start/Stream")
    assert stream is not None and stream.get("url") == PUBLIC.replace("http", "ws") + "/twilio/stream"
    return {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}


async def call(cluster: Cluster, web: str, audio, *, hold_until=None, hold_max_s: float = 30.0,
               call_sid: str | None = None, voice_on: str | None = None) -> str:
    """One call as Twilio makes it: the voice webhook (on ``voice_on``), then the stream (on ``web``)."""
    call_sid = call_sid or new_call_sid()
    params = await asyncio.to_thread(announce, cluster, voice_on or web, call_sid)
    return await stream_call(cluster.url(web).replace("http", "ws") + "/twilio/stream", audio, call_sid=call_sid,
                             parameters=params, realtime=True, hold_seconds=2.0, hold_until=hold_until,
                             max_hold_seconds=hold_max_s, signed_url=PUBLIC.replace("http", "ws") + "/twilio/stream")


def r_of(cluster: Cluster) -> redis.Redis:
    return redis.Redis.from_url(cluster.redis_url, decode_responses=True)


def transcribed(r: redis.Redis, sid: str) -> str:
    return " ".join(f.get("transcript", "") for _, f in r.xrange(keys.timeline(sid)) if f.get("transcript"))


async def test_calls_on_both_web_processes_are_routed_with_their_transcripts(cluster):
    r = r_of(cluster)
    cancel = load_audio(INTENTS / "u01.wav")  # "I want to cancel my account."
    sids = await asyncio.gather(*(call(cluster, web, cancel, hold_until=lambda s: r.hget(keys.call(s), "queue"))
                                  for web in ("web-a", "web-b", "web-a", "web-b")))
    owners = {r.hget(keys.call(s), "owner") for s in sids}
    assert owners == {cluster.health("web-a")["process"], cluster.health("web-b")["process"]}
    for sid in sids:
        assert r.hget(keys.call(sid), "queue") == "retention"
        wait_for(lambda s=sid: "cancel" in transcribed(r, s).lower(), timeout=30, what="transcript from a worker")
    # the transcripts came from the workers (the web processes load no recogniser in this mode)
    wait_for(lambda: sum(int(r.hget(keys.worker(w), "done") or 0) for w in cluster.workers) >= len(sids),
             what="jobs done by the workers")
    metrics = httpx.get(cluster.url("web-a") + "/metrics", timeout=5).text
    for urgency in keys.ASR_URGENCIES:  # what an autoscaler reads
        assert f'emoroute_asr_stream_length{{urgency="{urgency}"}}' in metrics
        assert f'emoroute_asr_stream_pending{{urgency="{urgency}"}}' in metrics
    r.close()


async def test_a_status_callback_on_the_other_process_ends_the_call_on_its_owner(cluster):
    r = r_of(cluster)
    caller = load_audio(INTENTS / "u01.wav")
    ended_by_callback = asyncio.Event()

    def hold(sid: str) -> bool:
        if r.hget(keys.call(sid), "queue") and not ended_by_callback.is_set():
            form = {"CallSid": sid, "AccountSid": ACCOUNT, "CallStatus": "completed"}
            sig = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/status", form)
            resp = httpx.post(cluster.url("web-b") + "/twilio/status", data=form, headers={"X-Twilio-Signature": sig})
            assert resp.status_code == 204
            ended_by_callback.set()
        return r.hget(keys.call(sid), "status") == "ended"

    sid = await call(cluster, "web-a", caller, hold_until=hold)
    assert r.hget(keys.call(sid), "end_reason") == "status:completed"
    assert r.hget(keys.call(sid), "owner") == cluster.health("web-a")["process"]
    wait_for(lambda: cluster.health("web-a")["live_calls"] == 0, what="the owner ended its stream state")
    r.close()


async def test_identification_agent_and_opt_out_on_the_other_process_reach_the_stream_holder(cluster):
    """Each call-flow webhook may land on either web process; the one holding the stream acts on it."""
    r = r_of(cluster)
    caller = load_audio(INTENTS / "u01.wav")  # "I want to cancel my account."
    posted: set[str] = set()

    def post(path: str, form: dict[str, str]) -> None:
        sig = RequestValidator(TOKEN).compute_signature(PUBLIC + path, form)
        resp = httpx.post(cluster.url("web-b") + path, data=form, headers={"X-Twilio-Signature": sig}, timeout=10)
        assert resp.status_code in (200, 204), resp.text

    def phases(sid: str) -> list[str]:
        return [f["phase"] for _, f in r.xrange(keys.timeline(sid)) if f["type"] == "phase"]

    def hold(sid: str) -> bool:
        if not r.hget(keys.call(sid), "queue"):
            return False
        if not posted:  # routed: the caller presses star at identification, on the other process
            post("/twilio/identify?step=0&queue=retention&priority=7",
                 {"CallSid": sid, "AccountSid": ACCOUNT, "Digits": "*1234"})
            posted.add("identify")
        if "queue" in phases(sid) and "taskrouter" not in posted:
            post("/twilio/taskrouter", {"EventType": "reservation.accepted", "AccountSid": ACCOUNT,
                                        "WorkerName": "ann", "TaskAttributes": json.dumps({"call_sid": sid})})
            posted.add("taskrouter")
        return "agent" in phases(sid)

    sid = await call(cluster, "web-a", np.concatenate([caller, caller]), hold_until=hold)
    # an opted-out caller's stream stopping does not end the call: Twilio's status callback does
    wait_for(lambda: r.hget(keys.call(sid), "owner") == "", what="web-a letting go of the stream")
    assert r.hget(keys.call(sid), "status") != "ended"
    post("/twilio/status", {"CallSid": sid, "AccountSid": ACCOUNT, "CallStatus": "completed"})
    wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", what="call end")
    entries = [f for _, f in r.xrange(keys.timeline(sid))]
    # web-a's coordinator deleted what it had analysed, kept streaming without analysing, and wrote the phases
    assert [f["type"] for f in entries][:2] == ["started", "opted_out"], entries
    assert not [f for f in entries if f["type"] in ("reading", "transcript")], entries
    assert phases(sid) == ["queue", "agent"]
    summary = r.hgetall(keys.call(sid))
    assert summary["opted_out_via"] == "key" and "transcript" not in summary and "emotion" not in summary
    assert summary["queue"] == "retention" and summary["agent"] == "ann" and summary["identified_account_number"] == "1"
    r.close()


async def test_a_worker_killed_mid_burst_loses_no_transcript(cluster):
    r = r_of(cluster)
    cancel = load_audio(INTENTS / "u01.wav")
    victim = cluster.workers["worker-1"]

    async def kill_when_busy() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pending = await asyncio.to_thread(lambda: sum(
                (r.xpending(keys.asr_jobs(u), keys.ASR_GROUP) or {}).get("pending", 0) for u in keys.ASR_URGENCIES))
            if pending:
                break
            await asyncio.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)

    calls = [call(cluster, web, cancel, hold_until=lambda s: r.hget(keys.call(s), "queue"))
             for web in ("web-a", "web-b") * 3]
    sids, _ = await asyncio.gather(asyncio.gather(*calls), kill_when_busy())
    assert victim.wait(timeout=10) == -signal.SIGKILL
    for sid in sids:
        assert r.hget(keys.call(sid), "queue"), sid
        wait_for(lambda s=sid: "cancel" in transcribed(r, s).lower(), timeout=60, what=f"transcript of {sid}")
    assert int(r.get(keys.asr_dropped()) or 0) == 0
    r.close()


async def test_a_web_process_killed_mid_call_has_its_calls_ended_by_the_other(cluster):
    r = r_of(cluster)
    caller = load_audio(INTENTS / "u01.wav")
    owner = cluster.health("web-a")["process"]
    killed_at: list[float] = []

    def kill_when_queued(sid: str) -> bool:
        if r.hget(keys.call(sid), "queue") and not killed_at:
            os.kill(cluster.web["web-a"].pid, signal.SIGKILL)
            killed_at.append(time.monotonic())
        return False

    with pytest.raises((websockets.ConnectionClosed, OSError)):
        await call(cluster, "web-a", caller, hold_until=kill_when_queued, hold_max_s=10)
    sid = r.zrevrange(keys.calls_index(), 0, 0)[0]
    wait_for(lambda: r.hget(keys.call(sid), "status") == "ended", timeout=15, what="the other process ends it")
    bound = time.monotonic() - killed_at[0]
    assert r.hget(keys.call(sid), "end_reason") == f"owner_lost:{owner}"
    assert bound < 2 * 2 + 2, bound  # the lease (2 s) and a reaper round, with room for a slow machine
    # the reaper forgets the process after ending its calls (a reaper that dies mid-way leaves it to the next)
    wait_for(lambda: owner not in r.smembers(keys.procs()), timeout=5, what="the dead process forgotten")
    r.close()


def test_a_job_past_its_deadline_is_dropped_and_counted_not_transcribed(cluster):
    raw = redis.Redis.from_url(cluster.redis_url)
    reply = keys.asr_results("expired-test")
    before = int(raw.get(keys.asr_dropped()) or 0)
    raw.xadd(keys.asr_jobs("urgent"), {"id": "late", "reply": reply, "deadline": f"{time.time() - 1:.3f}",
                                       "audio": b"\x00\x00" * 16000})
    wait_for(lambda: int(raw.get(keys.asr_dropped()) or 0) == before + 1, what="the late job dropped")
    assert raw.xlen(reply) == 0  # never transcribed
    assert not [e for e in raw.xrange(keys.asr_jobs("urgent")) if e[1].get(b"id") == b"late"]  # acknowledged
    raw.close()


def test_a_worker_takes_the_most_urgent_job_first_and_reclaims_a_silent_workers_job(redis_url, whisper):
    import threading

    from emoroute.worker import InferenceWorker
    from router.asr_jobs import JobCipher, job_fields, segment_of

    raw = redis.Redis.from_url(redis_url)
    audio = load_audio(INTENTS / "u01.wav")
    cipher = JobCipher("dev-secret-key-not-for-production")
    reply = keys.asr_results("order-test")
    metrics_port = free_port()
    worker = InferenceWorker(raw, whisper, cipher=cipher, worker_id="w-order", claim_idle_ms=200,
                             metrics_port=metrics_port)
    worker.ensure_groups()

    def job(job_id: str) -> dict:
        return job_fields(cipher, job_id=job_id, reply=reply, deadline=time.time() + 60, audio=audio)

    # a job a silent worker took and never answered
    raw.xadd(keys.asr_jobs("normal"), job("orphan"))
    raw.xreadgroup(keys.ASR_GROUP, "silent", {keys.asr_jobs("normal"): ">"}, count=1)
    for i in range(2):
        raw.xadd(keys.asr_jobs("spare"), job(f"partial-{i}"))
        raw.xadd(keys.asr_jobs("normal"), job(f"routed-{i}"))
    raw.xadd(keys.asr_jobs("urgent"), job("deciding"))
    time.sleep(0.3)  # the orphan is now idle past claim_idle_ms
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_for(lambda: raw.xlen(reply) == 6, timeout=60, what="six answers")
    worker.stopping.set()
    thread.join(timeout=10)
    order = [fields[b"id"].decode() for _, fields in raw.xrange(reply)]
    assert order[0] == "orphan" and worker.stats.reclaimed == 1  # reclaimed before new work
    assert order[1:] == ["deciding", "routed-0", "routed-1", "partial-0", "partial-1"]
    assert all("cancel" in segment_of(fields, cipher).text.lower() for _, fields in raw.xrange(reply))
    # what an autoscaler reads from a worker
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert 'emoroute_asr_stream_length{urgency="urgent"} 0.0' in metrics
    assert 'emoroute_asr_stream_pending{urgency="normal"} 0.0' in metrics
    assert "emoroute_worker_jobs_total 6.0" in metrics
    raw.close()


async def test_job_streams_hold_no_readable_audio_or_transcript_and_forget_old_or_erased_jobs(tmp_path, whisper):
    # the review's finding (#33): in Redis ASR mode jobs carried PCM and the worker's raw transcript
    # ("My card number is for 111 111 111 ...") with an empty call_sid and no TTL, so erasure and
    # opt-out could not reach them and they stayed in the append-only file
    import threading

    import redis.asyncio as aioredis

    from emoroute.worker import InferenceWorker
    from router.asr_jobs import JobCipher, RemoteTranscriber, drop_jobs_of_calls, pcm16

    server = EmbeddedRedis(tmp_path / "redis", extra_args=("--aof-use-rdb-preamble", "no"))
    url = server.start()
    raw, web = redis.Redis.from_url(url), aioredis.Redis.from_url(url)
    key = "a7f3c9e1b5d2084f6a9c3e7b1d5f2a8c"
    worker = InferenceWorker(raw, whisper, cipher=JobCipher(key), worker_id="w-sealed", claim_idle_ms=200)
    thread = threading.Thread(target=worker.run, daemon=True)
    remote = RemoteTranscriber(web, process_id="web-sealed", cipher=JobCipher(key))
    try:
        await remote.start()
        # a job older than every deadline, that no worker took: trimmed when the next job is added
        stale = raw.xadd(keys.asr_jobs("spare"), {"id": "stale", "call_sid": "CA" + "1" * 32},
                         id=f"{int((time.time() - 120) * 1000)}-0")
        card = load_audio(INTENTS / "u49.wav")  # "My card number is 4 1 1 1, 1 1 1 1, ... my email is john at ..."
        sid = "CA" + "2" * 32
        queued = asyncio.create_task(remote.transcribe(card, 2, sid))  # spare: no worker yet
        for _ in range(100):  # the task needs the event loop to queue its job
            if any(b"audio" in f for _, f in raw.xrange(keys.asr_jobs("spare"))):
                break
            await asyncio.sleep(0.05)
        assert not raw.xrange(keys.asr_jobs("spare"), min=stale, max=stale)
        (_, fields), = raw.xrange(keys.asr_jobs("spare"))
        assert fields[b"call_sid"] == sid.encode()  # an erasure or opt-out can find it
        assert pcm16(card)[16000:16064] not in fields[b"audio"]  # sealed
        # the caller opts out before a worker took it: the job goes
        assert await drop_jobs_of_calls(web, [sid]) == 1
        queued.cancel()
        thread.start()
        segment = await remote.transcribe(card, 0, sid)  # urgent, now with a worker
        assert "card" in segment.text.lower() and "[CARD]" in segment.text or "[NUMBER]" in segment.text, segment
        assert "1111" not in segment.text.replace(" ", "") and "john" not in segment.text.lower(), segment
        for _ in range(100):  # the reader deletes what it read on the event loop
            if all(raw.xlen(keys.asr_jobs(u)) == 0 for u in keys.ASR_URGENCIES) and \
                    raw.xlen(keys.asr_results("web-sealed")) == 0:
                break
            await asyncio.sleep(0.05)
        assert all(raw.xlen(keys.asr_jobs(u)) == 0 for u in keys.ASR_URGENCIES)
        assert raw.xlen(keys.asr_results("web-sealed")) == 0
        time.sleep(1.5)  # appendfsync everysec
        aof = (tmp_path / "redis" / "appendonly.aof").read_bytes()
        assert sid.encode() in aof  # the jobs were there
        assert b"card" not in aof.lower() and b"john" not in aof.lower() and pcm16(card)[16000:16064] not in aof
    finally:
        worker.stopping.set()
        if thread.is_alive():
            thread.join(timeout=10)
        await remote.stop()
        await web.aclose()
        raw.close()
        server.stop()
