"""Typed events that leave the Twilio serializer; nothing past it sees raw JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class StreamConnected:
    """Twilio opened the socket (``connected``)."""

    protocol: str
    version: str


@dataclass(frozen=True)
class CallStarted:
    """The stream's metadata arrived (``start``)."""

    call_sid: str
    stream_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AudioChunk:
    """20 ms (usually) of caller audio, decoded and resampled to 16 kHz float32."""

    call_sid: str
    sequence: int
    timestamp_ms: int
    samples: np.ndarray
    lost_ms: int = 0  # media the network lost just before this chunk (gaps in Twilio's timestamps)


@dataclass(frozen=True)
class DtmfPressed:
    """The caller pressed a key."""

    call_sid: str
    digit: str


@dataclass(frozen=True)
class MarkReached:
    """A mark we sent was played."""

    call_sid: str
    name: str


@dataclass(frozen=True)
class CallEnded:
    """The stream stopped (``stop``) or the socket closed."""

    call_sid: str
    reason: str


StreamEvent = StreamConnected | CallStarted | AudioChunk | DtmfPressed | MarkReached | CallEnded
