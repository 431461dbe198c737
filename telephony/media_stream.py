"""Twilio Media Streams serializer: JSON text frames in, typed events out.

The one module that knows the wire format (``connected``, ``start``, ``media``,
``mark``, ``dtmf``, ``stop``). It decodes mu-law with a lookup table and
resamples to 16 kHz. Events it does not handle give ``None``; malformed input
raises :class:`StreamProtocolError` with a reason that is counted and logged by
the caller, and never ends the call.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from audio_models.g711 import StreamingUpsampler, mulaw_decode
from telephony.events import (
    AudioChunk,
    CallEnded,
    CallStarted,
    DtmfPressed,
    MarkReached,
    StreamConnected,
    StreamEvent,
)

EXPECTED_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
KNOWN_EVENTS = {"connected", "start", "media", "mark", "dtmf", "stop"}
MEDIA_GAP_TOLERANCE_MS = 10  # timestamps jitter by a few ms; a gap past half a 20 ms frame is lost media
MAX_GAP_MS = 60_000  # one gap counts at most this much (a clock jump is not an hour of lost audio)


class StreamProtocolError(ValueError):
    """A message broke the Media Streams protocol; ``reason`` is a short metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        # the detail may quote what the peer sent: never more than a line of it reaches a log
        super().__init__(f"{reason}: {detail[:200]}")
        self.reason = reason


@dataclass
class StreamCounters:
    """What one connection received and rejected, by reason."""

    frames: int = 0
    audio_frames: int = 0
    lost_ms: int = 0  # media lost in transit (gaps in the media timestamps)
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        """Count one rejected message."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


class TwilioStreamParser:
    """Per-connection state: the call it belongs to, the last sequence number, the resampler."""

    def __init__(self, *, max_message_bytes: int = 64 * 1024, max_payload_bytes: int = 1600) -> None:
        """Create a parser that rejects messages over ``max_message_bytes`` and audio over ``max_payload_bytes``."""
        self.max_message_bytes = max_message_bytes
        self.max_payload_bytes = max_payload_bytes
        self.call_sid: str | None = None
        self.stream_sid: str | None = None
        self.last_sequence = 0
        self.last_media_chunk = 0
        self.next_timestamp_ms: int | None = None  # where the next media message should start
        self.counters = StreamCounters()
        self._upsampler = StreamingUpsampler()

    def parse(self, text: str | bytes) -> StreamEvent | None:
        """Return the event for one WebSocket message, or None for ones we ignore.

        Raises:
            StreamProtocolError: oversize, not JSON, unknown shape, bad base64,
                wrong codec, media before start, duplicate or out-of-order frame.
        """
        self.counters.frames += 1
        try:
            return self._parse(text)
        except StreamProtocolError as exc:
            self.counters.reject(exc.reason)
            raise

    def _parse(self, text: str | bytes) -> StreamEvent | None:
        if len(text) > self.max_message_bytes:
            raise StreamProtocolError(
                "oversize", f"message of {len(text)} bytes exceeds {self.max_message_bytes}"
            )
        try:
            msg = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StreamProtocolError("not_json", str(exc)) from exc
        if not isinstance(msg, dict) or not isinstance(msg.get("event"), str):
            raise StreamProtocolError("no_event", "message is not an object with an 'event' string")
        event = msg["event"]
        if event not in KNOWN_EVENTS:
            raise StreamProtocolError("unknown_event", f"event type {event!r} is not part of Media Streams")
        if event == "connected":
            return StreamConnected(str(msg.get("protocol", "")), str(msg.get("version", "")))
        if event == "start":
            return self._start(msg)
        if self.call_sid is None:
            raise StreamProtocolError("before_start", f"{event!r} arrived before 'start'")
        self._check_sequence(msg)
        if event == "media":
            return self._media(msg)
        if event == "stop":
            return CallEnded(self.call_sid, "stop")
        if event == "dtmf":
            digit = _section(msg, "dtmf").get("digit")
            return DtmfPressed(self.call_sid, str(digit)) if digit is not None else None
        name = _section(msg, "mark").get("name")
        return MarkReached(self.call_sid, str(name)) if name is not None else None

    def _start(self, msg: dict[str, Any]) -> CallStarted:
        if self.call_sid is not None:
            raise StreamProtocolError("duplicate_start", f"second 'start' on stream of {self.call_sid}")
        start = _section(msg, "start")
        call_sid, stream_sid = start.get("callSid"), start.get("streamSid") or msg.get("streamSid")
        if not isinstance(call_sid, str) or not call_sid or not isinstance(stream_sid, str):
            raise StreamProtocolError("bad_start", "'start' lacks callSid or streamSid")
        fmt = start.get("mediaFormat") or {}
        if any(fmt.get(k) != v for k, v in EXPECTED_FORMAT.items()):
            raise StreamProtocolError(
                "wrong_codec", f"mediaFormat {fmt} is not {EXPECTED_FORMAT} (8 kHz mono mu-law)"
            )
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise StreamProtocolError("bad_start", "customParameters is not an object")
        self.call_sid, self.stream_sid = call_sid, stream_sid
        self.last_sequence = _int(msg.get("sequenceNumber"), "sequenceNumber", default=0) or 0
        return CallStarted(
            call_sid=call_sid,
            stream_sid=stream_sid,
            account_sid=str(start.get("accountSid", "")),
            tracks=tuple(str(t) for t in start.get("tracks", ("inbound",))),
            custom_parameters={str(k): str(v) for k, v in params.items()},
        )

    def _check_sequence(self, msg: dict[str, Any]) -> None:
        if msg.get("streamSid") not in (None, self.stream_sid):
            raise StreamProtocolError("wrong_stream", f"streamSid {msg.get('streamSid')!r} is not ours")
        seq = _int(msg.get("sequenceNumber"), "sequenceNumber", default=None)
        if seq is None:
            return
        if seq <= self.last_sequence:
            raise StreamProtocolError(
                "out_of_order", f"sequenceNumber {seq} after {self.last_sequence} (duplicate or late)"
            )
        self.last_sequence = seq

    def _media(self, msg: dict[str, Any]) -> AudioChunk | None:
        assert self.call_sid is not None
        media = _section(msg, "media")
        if media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return None
        payload = media.get("payload")
        if not isinstance(payload, str) or not payload:
            raise StreamProtocolError("bad_payload", "media.payload is missing or empty")
        if len(payload) * 3 // 4 > self.max_payload_bytes:
            raise StreamProtocolError("oversize_payload", f"media.payload of about {len(payload) * 3 // 4} bytes "
                                                          f"exceeds {self.max_payload_bytes} (Twilio sends 160)")
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StreamProtocolError("bad_base64", str(exc)) from exc
        self.counters.audio_frames += 1
        timestamp = _int(media.get("timestamp"), "media.timestamp", default=None)
        chunk = _int(media.get("chunk"), "media.chunk", default=None)
        lost = 0
        if timestamp is not None and self.next_timestamp_ms is not None:
            # more than half a frame late: that much audio never arrived (Twilio's timestamps are stream time)
            gap = timestamp - self.next_timestamp_ms
            lost = gap if gap > MEDIA_GAP_TOLERANCE_MS else 0
        elif chunk is not None and self.last_media_chunk:
            lost = max(0, chunk - self.last_media_chunk - 1) * len(raw) // 8
        if timestamp is not None:
            self.next_timestamp_ms = timestamp + len(raw) // 8  # 8 mu-law bytes a millisecond
        if chunk is not None:
            self.last_media_chunk = chunk
        if lost:
            self.counters.lost_ms += min(lost, MAX_GAP_MS)
        return AudioChunk(
            call_sid=self.call_sid,
            sequence=self.last_sequence,
            timestamp_ms=timestamp or 0,
            samples=self._upsampler.process(mulaw_decode(raw)),
            lost_ms=min(lost, MAX_GAP_MS),
        )


def _section(msg: dict[str, Any], name: str) -> dict[str, Any]:
    section = msg.get(name)
    if not isinstance(section, dict):
        raise StreamProtocolError(f"bad_{name}", f"'{name}' event without a '{name}' object")
    return section


def _int(value: object, name: str, *, default: int | None) -> int | None:
    if value is None:
        return default
    try:
        return int(str(value))
    except ValueError as exc:
        raise StreamProtocolError("bad_number", f"{name}={value!r} is not an integer") from exc


def media_message(*, stream_sid: str, sequence: int, chunk: int, timestamp_ms: int, payload: bytes) -> str:
    """Return one ``media`` message exactly as Twilio sends it (used by the simulator)."""
    return json.dumps({
        "event": "media",
        "sequenceNumber": str(sequence),
        "media": {
            "track": "inbound",
            "chunk": str(chunk),
            "timestamp": str(timestamp_ms),
            "payload": base64.b64encode(payload).decode("ascii"),
        },
        "streamSid": stream_sid,
    })


def start_message(
    *, call_sid: str, stream_sid: str, account_sid: str, custom_parameters: dict[str, str]
) -> str:
    """Return a ``start`` message exactly as Twilio sends it (used by the simulator)."""
    return json.dumps({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": account_sid,
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "mediaFormat": dict(EXPECTED_FORMAT),
            "customParameters": custom_parameters,
        },
        "streamSid": stream_sid,
    })


def stop_message(*, call_sid: str, stream_sid: str, account_sid: str, sequence: int) -> str:
    """Return a ``stop`` message exactly as Twilio sends it (used by the simulator)."""
    return json.dumps({
        "event": "stop",
        "sequenceNumber": str(sequence),
        "stop": {"accountSid": account_sid, "callSid": call_sid},
        "streamSid": stream_sid,
    })


CONNECTED_MESSAGE = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
