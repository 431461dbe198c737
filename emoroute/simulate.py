"""Acting as Twilio: sign and POST the voice webhook, open the Media Stream, stream a file.

Audio goes out exactly as Twilio sends it: 8 kHz mu-law, 160-byte (20 ms)
base64 payloads in ``media`` messages after ``connected`` and ``start``. After
the file the simulated caller stays on the line (silence) until the routing
decision shows up in the API, then hangs up with ``stop``. Also the load generator.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

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


async def simulate_call(
    target: SimTarget,
    audio_16k: np.ndarray,
    *,
    realtime: bool = False,
    caller: str = "+15550001111",
    hold_timeout: float = 20.0,
) -> dict[str, Any]:
    """Run one simulated call; return the call summary the server stored (with its decision)."""
    call_sid = "CA" + uuid.uuid4().hex
    stream_sid = "MZ" + uuid.uuid4().hex
    validator = RequestValidator(target.auth_token)
    form = {"CallSid": call_sid, "AccountSid": target.account_sid, "From": caller, "To": "+15550100000",
            "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
    voice_url = target.public_url.rstrip("/") + "/twilio/voice"
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.post(f"{target.url}/twilio/voice", data=form,
                                 headers={"X-Twilio-Signature": validator.compute_signature(voice_url, form)})
        resp.raise_for_status()
        stream_url, params = _stream_from_twiml(resp.text)
        headers = {"X-Twilio-Signature": validator.compute_signature(stream_url, {})}
        async with websockets.connect(stream_url, additional_headers=headers, max_size=2**20) as ws:
            await ws.send(CONNECTED_MESSAGE)
            await ws.send(start_message(call_sid=call_sid, stream_sid=stream_sid,
                                        account_sid=target.account_sid, custom_parameters=params))
            seq = 1
            decided = asyncio.create_task(_wait_for_decision(client, target, call_sid, hold_timeout))
            started = time.monotonic()
            frames = mulaw_frames(audio_16k)
            silence = SILENCE_BYTE * FRAME_BYTES
            n = 0
            # The whole file is spoken even when the decision comes first (Twilio's <Start><Stream>
            # keeps streaming while the caller holds), then silence until the decision.
            while n < len(frames) or not decided.done():
                payload = frames[n] if n < len(frames) else silence
                if n >= len(frames) and time.monotonic() - started > hold_timeout + len(frames) * 0.02:
                    break
                seq += 1
                await ws.send(media_message(stream_sid=stream_sid, sequence=seq, chunk=n + 1,
                                            timestamp_ms=n * 20, payload=payload))
                n += 1
                if realtime:
                    await asyncio.sleep(max(0.0, started + n * 0.02 - time.monotonic()))
                elif n % 25 == 0:
                    # Fast mode still yields, and after the file holds at 10x real time.
                    await asyncio.sleep(0.05 if n >= len(frames) else 0)
            summary = await decided
            await ws.send(stop_message(call_sid=call_sid, stream_sid=stream_sid,
                                       account_sid=target.account_sid, sequence=seq + 1))
    return {"call_sid": call_sid, "frames_sent": n, **summary}


async def simulate_many(
    target: SimTarget, audios: list[tuple[str, np.ndarray]], *, calls: int, realtime: bool
) -> list[dict[str, Any]]:
    """Run ``calls`` concurrent calls cycling through ``audios``; return their summaries."""
    async def one(i: int) -> dict[str, Any]:
        name, audio = audios[i % len(audios)]
        try:
            result = await simulate_call(target, audio, realtime=realtime, caller=f"+1555000{i:04d}")
        except (OSError, httpx.HTTPError, websockets.WebSocketException, RuntimeError) as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        return {"file": name, **result}

    return list(await asyncio.gather(*(one(i) for i in range(calls))))
