"""What the live-call coordinator and its listener know about one call (router.live, router.listening)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from audio_models.pipeline import StreamSegmenter
from audio_models.vad import SileroVAD
from router.phases import PhaseTrack
from router.policy import Decision, TextSignals, TrajectoryPoint


@dataclass
class CallState:
    """What the coordinator knows about one live call."""

    call_sid: str
    caller: str
    started_wall: float
    segmenter: StreamSegmenter
    vad: SileroVAD  # the call's VAD state (its chunks are scored with other calls': router.live)
    points: list[TrajectoryPoint] = field(default_factory=list)
    texts: list[TextSignals] = field(default_factory=list)
    decision: Decision | None = None
    deciding: bool = False
    utterances_in_flight: int = 0
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    arrival: float = 0.0
    ended: bool = False
    timer: asyncio.Task[Any] | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    # live partial transcripts: when the next is due (seconds into the open utterance), whether one
    # is being decoded, and the latest one as (utterance start in s, analysed text)
    partial_due_s: float = 0.0
    partial_busy: bool = False
    partial: tuple[float, TextSignals] | None = None
    with_agent: bool = False
    # call time (s) until which short digit runs are masked: the caller named a card, PIN, code...
    sensitive_until: float = -1.0
    last_write: asyncio.Task[Any] | None = None
    phases: PhaseTrack = field(default_factory=PhaseTrack)
    key: str | None = None  # the keypad key the call was routed by
    opted_out: bool = False  # the caller refused the analysis: nothing more is scored or stored
    asked_manager: bool = False
    stream_gone: bool = False  # an opted-out caller's stream stopped; the call goes on
    language: str = ""  # the caller's language once identified ("" until then; "en" for English)
    language_routed: bool = False  # the route sent to Twilio already carried that language
    language_checked: bool = False  # the caller was asked (by a key) whether they speak English or another
    runners_up: tuple[str, ...] = ()  # the languages the identifier ranked next (the check offers them)
    # what the English recogniser heard of utterances taken for another language: (call time s,
    # text, whether short numbers are masked), heard again if the caller keys that they speak English
    english_readings: list[tuple[float, str, bool]] = field(default_factory=list)
    # the first utterance's transcription and when the frame that closed it came (perf_counter):
    # the words' latency (router.metrics first_words_latency) is measured from there
    first_asr: asyncio.Task[Any] | None = None
    first_closed_at: float = 0.0
    dropped: list[tuple[float, int]] = field(default_factory=list)  # (call time s, ms lost in transit)
