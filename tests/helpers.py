"""Driving a live server the way Twilio does, with hooks to misbehave."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable

import httpx
import numpy as np
import websockets
from twilio.request_validator import RequestValidator

from emoroute.simulate import FRAME_BYTES, SILENCE_BYTE, mulaw_frames
from telephony.media_stream import CONNECTED_MESSAGE, media_message, start_message, stop_message

ACCOUNT = "AC00000000000000000000000000000000"


def signed_post(url: str, public_url: str, path: str, form: dict[str, str], token: str = "dev-auth-token",
                signature: str | None = None) -> httpx.Response:
    sig = signature if signature is not None else RequestValidator(token).compute_signature(public_url + path, form)
    headers = {"X-Twilio-Signature": sig} if sig else {}
    return httpx.post(url + path, data=form, headers=headers, timeout=30)


def answer_identification(base: str, call_sid: str, digits: str = "#",
                          headers: dict[str, str] | None = None) -> str:
    """Play back the identification step EmoRoute sent the call, as Twilio would: POST its <Gather> action.

    Reads the step from the dry-run REST requests (what Twilio would have been told to play),
    submits ``digits`` to its action URL, signed, and returns the TwiML answer (the next step or
    the <Enqueue>).
    """
    headers = headers or {"Authorization": "Bearer dev-supervisor-token"}
    sent = httpx.get(f"{base}/api/dry-run/requests", params={"call_sid": call_sid}, headers=headers, timeout=10)
    sent.raise_for_status()
    actions = [g.get("action", "") for r in sent.json() if "Twiml" in r["form"]
               for g in ET.fromstring(r["form"]["Twiml"]).iter("Gather")]
    steps = [a for a in actions if "/twilio/identify" in a]
    assert steps, f"no identification step was sent for {call_sid}: {actions}"
    path = steps[-1].removeprefix(base).replace("&amp;", "&")
    resp = signed_post(base, base, path, {"CallSid": call_sid, "AccountSid": ACCOUNT, "Digits": digits})
    resp.raise_for_status()
    return resp.text


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def announce(ws_url: str, call_sid: str, *, caller: str = "+15550001111", token: str = "dev-auth-token"
             ) -> dict[str, str]:
    """POST the signed voice webhook for ``call_sid`` as Twilio would; return the <Stream> parameters."""
    base = ws_url.replace("ws://", "http://").removesuffix("/twilio/stream")
    form = {"CallSid": call_sid, "AccountSid": ACCOUNT, "From": caller, "To": "+15550100000",
            "CallStatus": "ringing", "Direction": "inbound"}
    resp = signed_post(base, base, "/twilio/voice", form, token=token)
    resp.raise_for_status()
    stream = ET.fromstring(resp.text).find("./Start/Stream")
    assert stream is not None, resp.text
    return {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}


async def stream_call(
    ws_url: str,
    audio: np.ndarray,
    *,
    call_sid: str | None = None,
    caller: str = "+15550001111",
    token: str = "dev-auth-token",
    hold_seconds: float = 0.0,
    inject: Callable[[websockets.ClientConnection, int], Awaitable[None]] | None = None,
    send_stop: bool = True,
    stop_after_frames: int | None = None,
    hold_until: Callable[[str], object] | None = None,
    max_hold_seconds: float = 20.0,
    parameters: dict[str, str] | None = None,
    realtime: bool = False,
    signed_url: str | None = None,
    local_addr: tuple[str, int] | None = None,
) -> str:
    """Stream ``audio`` as Twilio would; ``inject(ws, n)`` runs before frame n. Return the CallSid.

    The call is first announced by a signed voice webhook (its <Stream> parameters carry the
    per-call credential) unless ``parameters`` are given. With ``hold_until(call_sid)``, the
    caller then stays on the line (silence) until it is true. ``realtime``: 20 ms a frame.
    ``signed_url``: the stream URL Twilio signs (the public one, behind a load balancer), if not
    ``ws_url`` itself. ``local_addr``: the client address to call from (another loopback address).
    """
    call_sid = call_sid or new_call_sid()
    if parameters is None:
        parameters = await asyncio.to_thread(announce, ws_url, call_sid, caller=caller, token=token)
    stream_sid = "MZ" + uuid.uuid4().hex
    headers = {"X-Twilio-Signature": RequestValidator(token).compute_signature(signed_url or ws_url, {})}
    frames = mulaw_frames(audio) + [SILENCE_BYTE * FRAME_BYTES] * int(hold_seconds * 50)
    if stop_after_frames is not None:
        frames = frames[:stop_after_frames]
    extra = {"local_addr": local_addr} if local_addr else {}
    async with websockets.connect(ws_url, additional_headers=headers, max_size=2**22, **extra) as ws:
        await ws.send(CONNECTED_MESSAGE)
        await ws.send(start_message(call_sid=call_sid, stream_sid=stream_sid, account_sid=ACCOUNT,
                                    custom_parameters=parameters))
        seq = 1
        started = time.monotonic()
        for n, payload in enumerate(frames):
            if inject is not None:
                await inject(ws, n)
            seq += 1
            await ws.send(media_message(stream_sid=stream_sid, sequence=seq, chunk=n + 1, timestamp_ms=n * 20,
                                        payload=payload))
            if realtime:
                await asyncio.sleep(max(0.0, started + (n + 1) * 0.02 - time.monotonic()))
            elif n % 25 == 0:
                await asyncio.sleep(0.02)
        if hold_until is not None:
            deadline = time.monotonic() + max_hold_seconds
            n = len(frames)
            while not hold_until(call_sid) and time.monotonic() < deadline:
                for _ in range(5):
                    seq += 1
                    n += 1
                    await ws.send(media_message(stream_sid=stream_sid, sequence=seq, chunk=n, timestamp_ms=n * 20,
                                                payload=SILENCE_BYTE * FRAME_BYTES))
                await asyncio.sleep(0.1)
        if send_stop:
            await ws.send(stop_message(call_sid=call_sid, stream_sid=stream_sid, account_sid=ACCOUNT,
                                       sequence=seq + 1))
    return call_sid


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class HeldCall:
    """A call that streams real audio and then stays on the line until released."""

    def __init__(self, ws_url: str, audio, caller: str = "+15550001111") -> None:
        self.release = threading.Event()
        self.sid = "CA" + os.urandom(16).hex()
        self.thread = threading.Thread(target=lambda: asyncio.run(stream_call(
            ws_url, audio, call_sid=self.sid, caller=caller, hold_until=lambda _: self.release.is_set(),
            max_hold_seconds=90)), daemon=True)

    def __enter__(self) -> HeldCall:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(timeout=30)

