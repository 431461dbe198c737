"""Acting as Twilio: sign and POST the voice webhook, open the Media Stream, stream a file.

Audio goes out exactly as Twilio sends it: 8 kHz mu-law, 160-byte (20 ms)
base64 payloads in ``media`` messages after ``connected`` and ``start``. After
the file the simulated caller stays on the line (silence) until the routing
decision shows up in the API, then hangs up with ``stop``. Also the load generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import websockets
from twilio.request_validator import RequestValidator

from audio_models.g711 import mulaw_encode, resample
from telephony.media_stream import CONNECTED_MESSAGE, media_message, start_message, stop_message

FRAME_BYTES = 160  # 20 ms at 8 kHz
SILENCE_BYTE = b"\xff"


@dataclass(frozen=True)
class SimTarget:
    """Where and how to reach the server."""

    url: str
    public_url: str
    auth_token: str
    api_token: str
    account_sid: str = "AC00000000000000000000000000000000"


def mulaw_frames(audio_16k: np.ndarray) -> list[bytes]:
    """Return 20 ms mu-law frames of a 16 kHz waveform (the last one padded with silence)."""
    encoded = mulaw_encode(resample(audio_16k, 16000, 8000))
    pad = (-len(encoded)) % FRAME_BYTES
    encoded += SILENCE_BYTE * pad
    return [encoded[i : i + FRAME_BYTES] for i in range(0, len(encoded), FRAME_BYTES)]


def _stream_from_twiml(twiml: str) -> tuple[str, dict[str, str]]:
    root = ET.fromstring(twiml)
    stream = root.find("./Start/Stream")
    if stream is None or not stream.get("url"):
        raise RuntimeError(f"voice webhook answered without <Start><Stream>: {twiml[:200]}")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return str(stream.get("url")), params


async def _wait_for_decision(client: httpx.AsyncClient, target: SimTarget, call_sid: str,
                             within_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    headers = {"Authorization": f"Bearer {target.api_token}"}
    while time.monotonic() < deadline:
        resp = await client.get(f"{target.url}/api/calls/{call_sid}", headers=headers)
        if resp.status_code == 200 and resp.json().get("queue"):
            return dict(resp.json())
        await asyncio.sleep(0.05)
    return {}


@dataclass(frozen=True)
class CallerScript:
    """What a simulated caller does besides speaking, at each step of the call flow.

    ``key`` is pressed during the question (a menu key, or the opt-out key) after ``key_after_s``
    of audio; ``menu_key`` when the keypad menu is offered (None: no key); ``account_digits`` at
    identification ("" just presses hash); ``language_key`` at the language check of a caller taken
    for another language; ``agent`` takes the call from the queue (a signed
    TaskRouter ``reservation.accepted``; None: the caller hangs up while waiting), while the caller
    says ``agent_audio``; the agent leg then ends and ``survey_score`` is keyed (None: no key).
    """

    key: str | None = None
    key_after_s: float = 1.0
    menu_key: str | None = None
    account_digits: str = ""
    agent: str | None = None
    agent_audio: np.ndarray | None = None
    survey_score: str | None = None
    language_key: str | None = None  # keyed at the language check (None: no key, the language stays)
    language_s: float = 1.0  # call time the caller listens to the language check before keying
    identify_s: float = 1.5  # call time the caller takes to key the account number
    queue_wait_s: float = 2.0  # call time waiting in the queue before the agent answers (or hanging up)
    survey_s: float = 2.0  # call time listening to the survey question before keying


class _Twilio:
    """Signs and posts the webhooks of one call as Twilio does (form, X-Twilio-Signature over URL and form)."""

    def __init__(self, client: httpx.AsyncClient, target: SimTarget, call_sid: str, caller: str) -> None:
        self.client, self.target, self.call_sid = client, target, call_sid
        self.validator = RequestValidator(target.auth_token)
        self.base = {"CallSid": call_sid, "AccountSid": target.account_sid, "From": caller, "To": "+15550100000",
                     "Direction": "inbound", "ApiVersion": "2010-04-01"}
        self.steps: list[str] = []  # the webhooks requested, in order (path and result)

    async def post(self, url: str, **form: str) -> str:
        """POST a webhook at its public ``url`` (rewritten to where the server listens); return the TwiML."""
        data = {**self.base, **form}
        signature = self.validator.compute_signature(url, data)
        local = self.target.url.rstrip("/") + url[len(self.target.public_url.rstrip("/")):]
        resp = await self.client.post(local, data=data, headers={"X-Twilio-Signature": signature})
        resp.raise_for_status()
        self.steps.append(urlsplit(url).path.rsplit("/", 1)[-1] + (f" {form}" if form else ""))
        return resp.text


def routed_by(twiml: str) -> tuple[str, int] | None:
    """Return (queue, priority) a routing TwiML document leads to: its <Enqueue>, or an identification step's."""
    root = ET.fromstring(twiml)
    enqueue = root.find("Enqueue")
    if enqueue is not None:
        task = enqueue.find("Task")
        if task is not None:
            return str(json.loads(task.text or "{}").get("queue", "")), int(task.get("priority", "0"))
        return (enqueue.text or "").strip(), 0
    gather = root.find("Gather")
    if gather is not None and "/twilio/identify" in gather.get("action", ""):
        query = parse_qs(urlsplit(gather.get("action", "")).query)
        return query["queue"][0], int(query["priority"][0])
    return None


async def _route_twiml(client: httpx.AsyncClient, target: SimTarget, call_sid: str) -> str | None:
    """Return the TwiML of the server's latest redirect of the call (its dry-run record), if any."""
    resp = await client.get(f"{target.url}/api/dry-run/requests", params={"call_sid": call_sid},
                            headers={"Authorization": f"Bearer {target.api_token}"})
    if resp.status_code != 200:
        return None
    routes = [r for r in resp.json() if r.get("method") == "POST" and "Twiml" in r.get("form", {})]
    return str(routes[-1]["form"]["Twiml"]) if routes else None


async def simulate_call(
    target: SimTarget,
    audio_16k: np.ndarray,
    *,
    realtime: bool = False,
    caller: str = "+15550001111",
    hold_timeout: float = 20.0,
    script: CallerScript | None = None,
) -> dict[str, Any]:
    """Run one simulated call through the whole flow; return the call summary the server stored.

    Twilio's part is played from the TwiML the server answers with: the question's keypad, the
    redirect (read from the dry-run record), identification, the queue, the agent leg and the
    survey, each webhook signed. The summary gains ``steps``, the webhooks in order.
    """
    script = script or CallerScript()
    call_sid = "CA" + uuid.uuid4().hex
    stream_sid = "MZ" + uuid.uuid4().hex
    # idle connections are let go well before the server's keep-alive timeout (uvicorn: 5 s), so a
    # request is never sent on a connection the server is closing (an httpx ReadError in the drill)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(keepalive_expiry=1.0)) as client:
        twilio = _Twilio(client, target, call_sid, caller)
        greeting = await twilio.post(target.public_url.rstrip("/") + "/twilio/voice", CallStatus="ringing")
        stream_url, params = _stream_from_twiml(greeting)
        listen_gather = ET.fromstring(greeting).find("Gather")
        headers = {"X-Twilio-Signature": twilio.validator.compute_signature(stream_url, {})}
        async with websockets.connect(stream_url, additional_headers=headers, max_size=2**20) as ws:
            line = _Line(ws, call_sid, stream_sid, target.account_sid, realtime)
            await ws.send(CONNECTED_MESSAGE)
            await ws.send(start_message(call_sid=call_sid, stream_sid=stream_sid,
                                        account_sid=target.account_sid, custom_parameters=params))
            line.say(audio_16k)
            streaming = asyncio.create_task(line.run())
            try:
                twiml: str | None = None
                if script.key is not None and listen_gather is not None:
                    await line.heard(script.key_after_s)
                    twiml = await twilio.post(listen_gather.get("action", ""), Digits=script.key)
                else:
                    decided = await _wait_for_decision(client, target, call_sid, hold_timeout + len(audio_16k) / 16000)
                    if decided:
                        twiml = await _route_twiml(client, target, call_sid)
                    if twiml is None and not decided:  # no redirect in time: the <Redirect> after the question
                        twiml = await twilio.post(target.public_url.rstrip("/") + "/twilio/fallback")
                await _follow(twilio, line, twiml, script)
                await line.drained()
            finally:
                await line.stop()
                streaming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await streaming
        await twilio.post(target.public_url.rstrip("/") + "/twilio/status", CallStatus="completed")
        summary = await _wait_for_decision(client, target, call_sid, 5.0)
    return {"call_sid": call_sid, "frames_sent": line.sent, "steps": twilio.steps, **summary}


async def _follow(twilio: _Twilio, line: _Line, twiml: str | None, script: CallerScript) -> None:
    """Play the caller's side of each TwiML document until the call hangs up or has nothing left to do."""
    for _ in range(12):  # a flow is a handful of documents; a loop would be a server bug
        if twiml is None:
            return
        root = ET.fromstring(twiml)
        if root.find("Stop/Stream") is not None:
            await line.stop()  # Twilio sends 'stop' on the stream it was told to stop
        gather, enqueue = root.find("Gather"), root.find("Enqueue")
        if gather is not None:
            action = gather.get("action", "")
            path = urlsplit(action).path
            if path.endswith("/twilio/keypad"):
                digits = script.menu_key or ""
            elif path.endswith("/twilio/language"):
                digits = script.language_key or ""
                await line.pause(script.language_s)
            elif path.endswith("/twilio/identify"):
                digits = script.account_digits
                await line.pause(script.identify_s)
            elif path.endswith("/twilio/survey"):
                digits = script.survey_score or ""
                if not digits:
                    return  # no key: the survey's <Hangup>
                await line.pause(script.survey_s)
            else:
                return
            if not digits and gather.get("actionOnEmptyResult") != "true":
                break  # Twilio goes on to the verbs after the <Gather>
            twiml = await twilio.post(action, Digits=digits)
            continue
        if enqueue is not None and enqueue.get("action"):
            if script.agent is None:
                await line.pause(script.queue_wait_s)
                return  # the caller waits, then gives up in the queue
            await line.pause(script.queue_wait_s)
            task = json.dumps({"call_sid": twilio.call_sid})
            await twilio.post(twilio.target.public_url.rstrip("/") + "/twilio/taskrouter",
                              EventType="reservation.accepted", TaskAttributes=task, WorkerName=script.agent)
            if script.agent_audio is not None:
                line.say(script.agent_audio)
            await line.drained()
            await asyncio.sleep(0.3)
            twiml = await twilio.post(enqueue.get("action", ""), QueueResult="bridged", QueueTime="5")
            continue
        return
    # a <Gather> with nothing keyed falls through to its <Enqueue> (or <Redirect>): a queued caller hangs up


class _Line:
    """The caller's audio on the Media Stream: what is queued to be said, else silence, as Twilio frames it."""

    def __init__(self, ws: Any, call_sid: str, stream_sid: str, account_sid: str, realtime: bool) -> None:
        self.ws, self.call_sid, self.stream_sid, self.account_sid = ws, call_sid, stream_sid, account_sid
        self.realtime = realtime
        self.frames: deque[bytes] = deque()  # still to be said
        self.sent = 0
        self.seq = 1
        self.stopped = False
        self._progress = asyncio.Event()

    def say(self, audio_16k: np.ndarray) -> None:
        """Queue ``audio_16k`` to be spoken after what is queued already."""
        self.frames.extend(mulaw_frames(audio_16k))

    async def heard(self, seconds: float) -> None:
        """Wait until ``seconds`` of audio have gone out."""
        while self.sent * 0.02 < seconds and not self.stopped:
            self._progress.clear()
            await self._progress.wait()

    async def pause(self, seconds: float) -> None:
        """Wait for ``seconds`` more of call time (audio or silence) to go out."""
        await self.heard(self.sent * 0.02 + seconds)

    async def drained(self) -> None:
        """Wait until everything queued has been spoken."""
        while self.frames and not self.stopped:
            self._progress.clear()
            await self._progress.wait()

    async def run(self) -> None:
        """Send frames until stopped: the queued audio, silence when there is none."""
        started = time.monotonic()
        silence = SILENCE_BYTE * FRAME_BYTES
        while not self.stopped:
            speaking = bool(self.frames)
            payload = self.frames.popleft() if speaking else silence
            self.seq += 1
            await self.ws.send(media_message(stream_sid=self.stream_sid, sequence=self.seq, chunk=self.sent + 1,
                                             timestamp_ms=self.sent * 20, payload=payload))
            self.sent += 1
            self._progress.set()
            if self.realtime:
                await asyncio.sleep(max(0.0, started + self.sent * 0.02 - time.monotonic()))
            elif self.sent % 25 == 0:
                # fast mode still yields, and holds at 10x real time once nothing is queued
                await asyncio.sleep(0 if speaking else 0.05)

    async def stop(self) -> None:
        """Send Twilio's ``stop`` (once): the stream ends, the call may go on."""
        if self.stopped:
            return
        self.stopped = True
        self._progress.set()
        with contextlib.suppress(websockets.WebSocketException):
            await self.ws.send(stop_message(call_sid=self.call_sid, stream_sid=self.stream_sid,
                                            account_sid=self.account_sid, sequence=self.seq + 1))


async def simulate_many(
    target: SimTarget, audios: list[tuple[str, np.ndarray]], *, calls: int, realtime: bool,
    scripts: list[CallerScript] | None = None, callers: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Run ``calls`` concurrent calls cycling through ``audios`` (``scripts``, ``callers``); return the summaries."""
    async def one(i: int) -> dict[str, Any]:
        name, audio = audios[i % len(audios)]
        script = scripts[i % len(scripts)] if scripts else None
        caller = callers[i % len(callers)] if callers else f"+1555000{i:04d}"
        try:
            result = await simulate_call(target, audio, realtime=realtime, caller=caller, script=script)
        except (OSError, httpx.HTTPError, websockets.WebSocketException, RuntimeError) as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        return {"file": name, **result}

    return list(await asyncio.gather(*(one(i) for i in range(calls))))
