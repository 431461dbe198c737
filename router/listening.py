"""What a live caller says: transcription, its analysis, the caller's language, the first decision's wait.

:class:`CallListener` serves every call of a :class:`router.live.CallCoordinator` (which routes on
what it hears and on the tone). Each finished utterance is transcribed at the priority the call
needs (a call not yet routed goes first); while an utterance is still being spoken, a partial is
transcribed whenever an ASR worker is idle. A transcript is analysed off the event loop (intents,
sentiment; short numbers masked while the caller names a secret), and the first one that names
the caller's language surely enough keeps it. The first decision waits at most
``transcript_wait_s`` for an utterance's transcript, then takes the utterance's partial or goes on
tone alone; the late transcript is handed back to the coordinator (``on_late_text``) to re-route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import numpy as np

from audio_models.asr_queue import SPARE
from audio_models.pipeline import WorkDropped
from audio_models.transcribe import TranscriptSegment
from router.call_state import CallState
from router.metrics import Metrics
from router.policy import Policy, TextSignals
from router.redact import names_secret, redact
from router.store import CallStore
from router.text import TextAnalyser

log = logging.getLogger(__name__)
MAX_ENGLISH_READINGS = 5  # utterances taken for another language whose English reading is kept
SENSITIVE_WINDOW_S = 30.0  # how long (call audio time) short numbers stay masked after a card/PIN is named

Transcribe = Callable[[np.ndarray, int, str, bool, str], Coroutine[Any, Any, TranscriptSegment]]


def said_so_far(state: CallState) -> TextSignals | None:
    """Return what the caller has said so far, as routing reads it (None before any transcript)."""
    if not state.texts:
        return None
    sentiments = [t.sentiment for t in state.texts if t.sentiment is not None]
    return TextSignals(
        sentiment=sum(sentiments) / len(sentiments) if sentiments else None,
        intents=frozenset().union(*(t.intents for t in state.texts)),
        snippet=state.texts[-1].snippet,
    )


class CallListener:
    """Transcribes and analyses what every live caller says (one per coordinator)."""

    def __init__(
        self,
        *,
        policy: Policy,
        store: CallStore,
        metrics: Metrics,
        text_analyser: TextAnalyser,
        transcribe: Transcribe,
        persist: Callable[[CallState, Callable[[], Coroutine[Any, Any, Any]]], asyncio.Task[Any]],
        spawn: Callable[[CallState, Coroutine[Any, Any, None]], asyncio.Task[None]],
        on_late_text: Callable[[CallState, TextSignals, float], Coroutine[Any, Any, None]],
        transcript_wait_s: float = 1.0,
        partial_every_s: float = 0.0,
        asr_workers: int = 1,
    ) -> None:
        """Wire the listener to the coordinator's store writes (``persist``, in each call's order) and tasks."""
        self.policy = policy
        self.store = store
        self.metrics = metrics
        self.text_analyser = text_analyser
        self._transcribe_fn = transcribe
        self.persist = persist
        self.spawn = spawn
        self.on_late_text = on_late_text
        self.transcript_wait_s = transcript_wait_s
        self.partial_every_s = partial_every_s
        self.asr_workers = asr_workers
        self.asr_in_flight = 0

    async def transcribe(self, state: CallState, audio: np.ndarray, priority: int,
                         start_s: float) -> TranscriptSegment:
        """Transcribe one stretch of a call; ``start_s``: its start, to tell whether a secret was just named."""
        self.asr_in_flight += 1
        try:
            return await self._transcribe_fn(audio, priority, state.call_sid, start_s <= state.sensitive_until,
                                             state.language)
        finally:
            self.asr_in_flight -= 1

    def maybe_partial(self, state: CallState, utterance_closed: bool) -> None:
        """Start a partial transcript of the open utterance when one is due and ASR has room."""
        seg = state.segmenter
        if utterance_closed or not seg.in_speech:
            state.partial_due_s = self.partial_every_s
        if (not seg.in_speech or seg.open_seconds < state.partial_due_s or state.partial_busy
                or self.asr_in_flight >= self.asr_workers):
            return
        state.partial_busy = True
        state.partial_due_s = seg.open_seconds + self.partial_every_s
        self.spawn(state, self._partial(state, seg.open_audio(), seg.open_start_s, seg.seconds))

    async def _partial(self, state: CallState, audio: np.ndarray, start_s: float, t: float) -> None:
        try:
            segment = await self.transcribe(state, audio, SPARE, start_s)
        except WorkDropped:
            self.metrics.dropped.labels("partial_transcript").inc()
            return
        except Exception:  # noqa: BLE001 - a failed partial changes nothing; the final still comes
            self.metrics.errors.labels("transcriber").inc()
            log.exception("call %s: partial transcription failed", state.call_sid)
            return
        finally:
            state.partial_busy = False
        if segment.empty or state.ended or state.opted_out:
            return
        signals = await self.analyse(state, segment, t)
        if state.opted_out:
            return
        state.partial = (start_s, signals)
        self.metrics.transcripts.labels("partial").inc()
        self.persist(state, lambda: self.store.add_partial(call_sid=state.call_sid, t=t, text=signals.snippet,
                                                            intents=tuple(sorted(signals.intents))))

    async def analyse(self, state: CallState, segment: TranscriptSegment, at: float) -> TextSignals:
        """Analyse a transcript; short numbers are masked while the caller's recent speech names a secret."""
        if names_secret(segment.text) or any(names_secret(a) for a in segment.alternatives):
            state.sensitive_until = max(state.sensitive_until, at + SENSITIVE_WINDOW_S)
        sensitive = at <= state.sensitive_until or names_secret(segment.original)
        self._note_language(state, segment, at)
        if segment.english and len(state.english_readings) < MAX_ENGLISH_READINGS:
            state.english_readings.append((at, segment.english, sensitive))
        # off the event loop: the semantic intent classifier runs a sentence encoder (60-90 ms a reading)
        signals = await asyncio.to_thread(self.text_analyser.analyse, segment.text, segment.alternatives,
                                          sensitive=sensitive, original=segment.original)
        if segment.original:
            signals = replace(signals, original=redact(segment.original, sensitive=sensitive))
        return signals

    async def heard_in_english(self, state: CallState) -> list[TextSignals]:
        """Return what the caller said so far as the English recogniser heard it (they keyed English).

        The analyses of those utterances from another language's translation are set aside; the
        timeline gets each English reading as a transcript.
        """
        readings, state.english_readings = state.english_readings, []
        heard = []
        for at, text, sensitive in readings:
            signals = await asyncio.to_thread(self.text_analyser.analyse, text, (), sensitive=sensitive)
            if state.opted_out:  # refused while this was analysed: nothing more is kept
                return []
            heard.append(signals)
            self.persist(state, self._transcript_write(state, at, signals))
        state.texts = heard
        return heard

    def _transcript_write(self, state: CallState, at: float, signals: TextSignals
                          ) -> Callable[[], Coroutine[Any, Any, Any]]:
        """Return the store write of an English reading heard again (a transcript on the timeline)."""
        return lambda: self.store.add_transcript(call_sid=state.call_sid, t=at, text=signals.snippet,
                                                 sentiment=signals.sentiment, intents=tuple(sorted(signals.intents)),
                                                 language="en", heard_again=True)

    def _note_language(self, state: CallState, segment: TranscriptSegment, at: float) -> None:
        """Keep the caller's language once a transcript identifies it surely enough (the timeline says which)."""
        rules = self.policy.languages
        if state.language or not segment.language or segment.language_probability < rules.min_probability:
            return
        state.language, state.runners_up = segment.language, segment.runners_up
        route = rules.route(segment.language)
        log.info("call %s: caller speaks %s (P=%.2f)", state.call_sid, segment.language, segment.language_probability)
        self.persist(state, lambda: self.store.set_language(
            call_sid=state.call_sid, language=segment.language, probability=segment.language_probability, t=at,
            route=route.name if route else ""))

    async def await_text(
        self, state: CallState, task: asyncio.Task[TranscriptSegment], at: float, start_s: float | None = None
    ) -> TextSignals | None:
        """Return the analysed transcript; the first decision waits at most transcript_wait_s for it.

        If the final transcript misses that wait, the utterance's latest partial (if any) stands in.
        """
        try:
            if state.decision is None:
                # asyncio.wait, not wait_for(shield(task)): a transcript finishing as the wait runs out
                # counts as in time (wait_for could time out with the task already done, and lose it)
                await asyncio.wait({task}, timeout=self.transcript_wait_s)
                if not task.done():
                    return self._transcript_late(state, task, at, start_s)
            segment = await task
        except WorkDropped:
            self.metrics.dropped.labels("transcript").inc()
            return None
        except TimeoutError:  # the transcriber itself gave up (a remote job past its deadline)
            self.metrics.errors.labels("transcriber").inc()
            log.warning("call %s: no transcript (the job expired)", state.call_sid)
            return None
        except Exception:  # noqa: BLE001 - ASR trouble must not stop routing
            self.metrics.errors.labels("transcriber").inc()
            log.exception("call %s: transcription failed", state.call_sid)
            return None
        if segment.empty:
            self._time_first_words(state, task, segment)
            return None
        signals = await self.analyse(state, segment, at)
        self._time_first_words(state, task, segment)
        state.texts.append(signals)
        return signals

    def _time_first_words(self, state: CallState, task: asyncio.Task[TranscriptSegment],
                          segment: TranscriptSegment) -> None:
        """Time the words the call is first routed by (analysed, or found empty) from the end of its first utterance."""
        if task is state.first_asr and state.first_closed_at > 0:
            language = "en" if segment.language in ("", "en") else "other"
            self.metrics.first_words_latency.labels(language).observe(time.perf_counter() - state.first_closed_at)
            state.first_closed_at = 0.0

    def _transcript_late(self, state: CallState, task: asyncio.Task[TranscriptSegment], at: float,
                         start_s: float | None) -> TextSignals | None:
        """The first decision's wait ran out: the transcript follows later; the utterance's partial stands in."""
        self.metrics.errors.labels("transcript_timeout").inc()
        self.spawn(state, self._late_transcript(state, task, at))
        if state.partial is not None and start_s is not None and abs(state.partial[0] - start_s) < 0.05:
            log.info("call %s: transcript not ready within %.1fs; deciding on the partial transcript",
                     state.call_sid, self.transcript_wait_s)
            self.metrics.transcripts.labels("partial_decided").inc()
            state.texts.append(state.partial[1])
            return state.partial[1]
        log.warning("call %s: transcript not ready within %.1fs; deciding on tone alone", state.call_sid,
                    self.transcript_wait_s)
        return None

    async def _late_transcript(self, state: CallState, task: asyncio.Task[TranscriptSegment], at: float) -> None:
        """Hand a transcript that missed the first decision (at its utterance's end) to the coordinator."""
        signals = await self.await_text(state, task, at)
        if signals is None or state.opted_out:
            return
        await self.on_late_text(state, signals, at)
