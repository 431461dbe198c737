"""Live calls: from typed stream events to emotion readings, a decision, a queue, a timeline.

One :class:`CallCoordinator` serves all calls. Per call it keeps a VAD
segmenter and the trajectory; segments are scored by the shared batching
scorer; the first finished utterance (or ``max_listen_seconds`` of audio)
triggers the routing decision, which is sent to Twilio first and stored after (a slow
Redis never delays a redirect; each call's writes keep their order). Once an agent has the
call it stays with the agent: later readings and transcripts still reach the timeline and
the agent's cues, but nothing re-queues or redirects it. One call's failure is logged with
its SID and never touches another call. What callers say (transcripts, partials, their analysis,
the first decision's wait for them) is :class:`router.listening.CallListener`'s; where a call goes
(the decision, redirect, re-routes, raised priority) is :class:`router.routing.CallRouting`'s; what
callers chose besides speaking (a menu key, an opt-out, their language at the language check) is
:class:`router.choices.CallerChoices`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from audio_models.asr_queue import NORMAL, URGENT
from audio_models.line_quality import assess
from audio_models.pipeline import BatchingScorer, Segment, SegmenterConfig, StreamSegmenter, WorkDropped
from audio_models.transcribe import TranscriptSegment
from audio_models.vad import BatchedVAD, SileroVAD
from router.call_state import CallState
from router.choices import CallerChoices
from router.flow import CallFlow
from router.listening import CallListener
from router.metrics import Metrics
from router.phases import MANAGER_PHRASES, caller_hash, says_any
from router.policy import Decision, Policy, TextSignals, TrajectoryPoint
from router.redact import mask_phone
from router.routing import CallRouting
from router.store import CallStore, ReadingRecord
from router.text import TextAnalyser
from telephony.actions import CallActions
from telephony.events import AudioChunk, CallEnded, CallStarted, StreamEvent
from telephony.twiml import FlowUrls

log = logging.getLogger(__name__)


class CallCoordinator:
    """Routes every live call; feed it the serializer's events with :meth:`handle`."""

    def __init__(
        self,
        *,
        policy: Policy,
        store: CallStore,
        scorer: BatchingScorer,
        actions: CallActions,
        vad_factory: Callable[[], SileroVAD],
        metrics: Metrics,
        text_analyser: TextAnalyser,
        transcribe: Callable[[np.ndarray, int, str, bool, str], Coroutine[Any, Any, TranscriptSegment]] | None = None,
        transcript_wait_s: float = 1.0,
        segmenter_cfg: SegmenterConfig | None = None,
        partial_every_s: float = 0.0,
        asr_workers: int = 1,
        process_id: str = "",
        flow: CallFlow | None = None,
        caller_secret: str = "",
        on_opt_out: Callable[[str], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        """Wire the coordinator to its collaborators (``transcribe`` None = no ASR).

        ``on_opt_out(call_sid)`` runs after an opt-out's deletion is written (router.erasure: the
        call's queued jobs and Redis's files on disk).

        Every ``partial_every_s`` of an utterance still being spoken (0: never), its audio so far
        is transcribed as a partial, but only while an ASR worker is idle (of ``asr_workers``):
        finals always come first. A partial is shown to agents at once and, should the final
        transcript miss the first decision's wait, routes on what the caller has said so far.
        ``transcribe(audio, priority)`` queues by priority (audio_models/asr_queue.py): an utterance of a
        call not yet routed goes before those of routed calls, partials last.
        """
        self.policy = policy
        self.store = store
        self.scorer = scorer
        self.actions = actions
        self.vad_factory = vad_factory  # each call's VAD state; every call's chunks are scored together
        self.vad = BatchedVAD()
        metrics.vad_chunks.set_function(lambda: self.vad.chunks)
        metrics.vad_runs.set_function(lambda: self.vad.runs)
        self.metrics = metrics
        self.segmenter_cfg = segmenter_cfg or SegmenterConfig()
        self.text_analyser = text_analyser
        self.transcript_wait_s = transcript_wait_s
        # what the callers say (None: no ASR, tone and keys only)
        self.listener = None if transcribe is None else CallListener(
            policy=policy, store=store, metrics=metrics, text_analyser=text_analyser, transcribe=transcribe,
            persist=self._persist, spawn=self._spawn, on_late_text=self._late_text,
            transcript_wait_s=transcript_wait_s, partial_every_s=partial_every_s, asr_workers=asr_workers)
        self.process_id = process_id  # this web process, recorded as the owner of its calls
        # what a routed call hears next (identification, queue, keypad menu); the URLs come from the server
        self.flow = flow or CallFlow(policy, FlowUrls("http://127.0.0.1"))
        self.caller_secret = caller_secret  # salts the caller hash kept for repeat-caller analytics
        self.on_opt_out = on_opt_out
        self.calls: dict[str, CallState] = {}
        # where each call goes: its decision, redirect, re-routes and raised priorities
        self.routing = CallRouting(policy=policy, store=store, actions=actions, metrics=metrics, flow=self.flow,
                                   persist=self._persist, spawn=self._spawn, enter_phase=self.enter_phase)
        # what each caller chose besides speaking: a menu key, refusing the analysis, their language at the check
        self.choices = CallerChoices(policy=policy, store=store, actions=actions, metrics=metrics, calls=self.calls,
                                     routing=self.routing, listener=self.listener, persist=self._persist,
                                     spawn=self._spawn, enter_phase=self.enter_phase, on_opt_out=on_opt_out)

    async def handle(self, event: StreamEvent) -> None:
        """Process one event from a call's Media Stream."""
        match event:
            case CallStarted():
                await self._start(event)
            case AudioChunk():
                await self._audio(event)
            case CallEnded():
                await self.end_call(event.call_sid, event.reason)
            case _:
                log.debug("ignored %s", type(event).__name__)

    async def _start(self, event: CallStarted) -> None:
        vad = await asyncio.to_thread(self.vad_factory)
        state = CallState(
            call_sid=event.call_sid,
            caller=event.custom_parameters.get("caller", ""),
            started_wall=time.time(),
            segmenter=StreamSegmenter(None, self.segmenter_cfg),
            vad=vad,
        )
        self.calls[event.call_sid] = state
        self.metrics.calls.inc()
        self.metrics.live_calls.inc()
        self._persist(state, lambda: self.store.call_started(
            call_sid=event.call_sid, stream_sid=event.stream_sid, caller=state.caller, started_at=state.started_wall,
            owner=self.process_id, caller_hash=caller_hash(self.caller_secret, state.caller)))
        state.timer = self._spawn(state, self._listen_timeout(state))
        log.info("call %s from %s started (stream %s)", event.call_sid, mask_phone(state.caller), event.stream_sid)

    async def _audio(self, event: AudioChunk) -> None:
        state = self.calls.get(event.call_sid)
        if state is None or state.ended or state.opted_out:
            return
        received = time.perf_counter()
        if event.lost_ms:
            state.dropped.append((state.segmenter.seconds, event.lost_ms))
        # silero's VAD, on the event loop (cheaper than a thread hop), with every call's chunks that
        # came in the same turn of the loop: 0.05 ms a chunk for 16 calls, 0.13 ms for one
        chunks = state.segmenter.chunks(event.samples)
        probs = await self.vad.score(state.vad, chunks)
        if state.ended or state.opted_out:
            return
        segments = state.segmenter.advance(chunks, probs)
        for seg in segments:
            self._spawn(state, self._score(state, seg, received))
        if self.listener is not None and self.listener.partial_every_s > 0:
            self.listener.maybe_partial(state, any(seg.kind == "utterance" for seg in segments))
        # An utterance that already closed decides as soon as it is scored; the
        # listening limit only covers callers who have not finished one.
        if state.decision is None and not state.deciding and state.utterances_in_flight == 0 and (
            state.segmenter.seconds >= self.policy.decision.max_listen_seconds
        ):
            self._spawn(state, self.routing.decide(state, None, "listening time reached"))

    def _persist(self, state: CallState, write: Callable[[], Coroutine[Any, Any, Any]]) -> asyncio.Task[Any]:
        """Run one store write after the call's previous one (its timeline keeps its order), off the caller's path."""
        previous = state.last_write

        async def run() -> Any:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            return await write()

        task = asyncio.create_task(run())
        state.tasks.add(task)
        task.add_done_callback(lambda t: self._finished(state, t))
        state.last_write = task
        return task

    async def control(self, request: dict[str, Any]) -> None:
        """Act on a request another web process sent for a call this one holds (router.cluster)."""
        call_sid, action = str(request.get("call_sid", "")), request.get("action")
        if action == "end":
            await self.end_call(call_sid, str(request.get("reason", "ended elsewhere"))[:64])
        elif action == "with_agent":
            self.mark_with_agent(call_sid)
        elif action == "phase":
            self.enter_phase(call_sid, str(request.get("phase", "")))
        elif action == "keyed":
            d = request.get("decision") or {}
            self.choices.keyed(call_sid, str(request.get("key", "")),
                       Decision(str(d.get("queue")), int(d.get("priority", 3)), str(d.get("reason", "")),
                                str(d.get("rule", "keypad"))))
        elif action == "opt_out":
            await self.choices.opt_out(call_sid, str(request.get("via", "key"))[:16])
        elif action == "speaks_english":  # from a web process before speaks_language (a rolling upgrade)
            self.choices.speaks_language(call_sid, "en")
        elif action == "speaks_language":
            self.choices.speaks_language(call_sid, str(request.get("language", ""))[:3])
        else:
            log.warning("unknown control request %s", request)

    def mark_with_agent(self, call_sid: str) -> None:
        """An agent has the call (picked here, or TaskRouter said so): it is never re-queued or redirected."""
        state = self.calls.get(call_sid)
        if state is not None:
            state.with_agent = True
            self.enter_phase(call_sid, "agent")

    def enter_phase(self, call_sid: str, phase: str, at: float | None = None) -> None:
        """The call moved on (a real event: decision, identification answered, agent, agent leg ended).

        ``at``: the call time of the event (default: the audio heard so far).
        """
        state = self.calls.get(call_sid)
        if state is None or state.ended:
            return
        t = state.segmenter.seconds if at is None else at
        try:
            entered = state.phases.enter(phase, t)
        except ValueError:
            log.warning("call %s: unknown phase %r ignored", call_sid, phase)
            return
        if entered:
            self._persist(state, lambda: self.store.phase_changed(call_sid=call_sid, phase=phase, t=t))

    def points_of(self, call_sid: str) -> list[TrajectoryPoint] | None:
        """Return the live call's trajectory so far (None if this process does not hold it)."""
        state = self.calls.get(call_sid)
        return None if state is None or state.opted_out else list(state.points)

    def _spawn(self, state: CallState, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        state.tasks.add(task)
        task.add_done_callback(lambda t: self._finished(state, t))
        return task

    def _finished(self, state: CallState, task: asyncio.Task[Any]) -> None:
        state.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.metrics.errors.labels("call_task").inc()
            log.error("call %s: task failed: %r", state.call_sid, task.exception(), exc_info=task.exception())

    async def _listen_timeout(self, state: CallState) -> None:
        # Wall-clock guard for streams that stall: audio time normally decides first.
        await asyncio.sleep(self.policy.decision.max_listen_seconds + 1.0)
        if state.utterances_in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.settled.wait(), self.transcript_wait_s + 1.0)
        if state.decision is None and not state.deciding and not state.ended:
            await self.routing.decide(state, None, "listening time reached (wall clock)")

    async def _score(self, state: CallState, seg: Segment, received: float) -> None:
        if seg.kind != "utterance":
            await self._score_segment(state, seg, received)
            return
        state.utterances_in_flight += 1
        state.settled.clear()
        try:
            await self._score_segment(state, seg, received)
        finally:
            state.utterances_in_flight -= 1
            if state.utterances_in_flight == 0:
                state.settled.set()

    async def _score_segment(self, state: CallState, seg: Segment, received: float) -> None:
        listener = self.listener
        asr: asyncio.Task[TranscriptSegment] | None = (
            asyncio.create_task(listener.transcribe(state, seg.audio, URGENT if state.decision is None else NORMAL,
                                                    seg.start_s))
            if listener is not None and seg.kind == "utterance" else None)
        if asr is not None and state.first_asr is None and state.decision is None:
            state.first_asr, state.first_closed_at = asr, received
        try:
            reading = await self.scorer.score(seg.audio, droppable=seg.kind != "utterance")
        except WorkDropped:
            self.metrics.dropped.labels("emotion_window").inc()
            return
        except Exception:  # noqa: BLE001 - a model failure must still route the call
            self.metrics.errors.labels("emotion_model").inc()
            log.exception("call %s: emotion model failed on %s %.1f-%.1fs", state.call_sid, seg.kind,
                          seg.start_s, seg.end_s)
            if listener is not None and asr is not None:
                await listener.await_text(state, asr, seg.end_s, seg.start_s)
            if seg.kind == "utterance" and state.decision is None:
                await self.routing.decide(state, received, "emotion model failed", at=seg.end_s)
            return
        text = (await listener.await_text(state, asr, seg.end_s, seg.start_s)
                if listener is not None and asr is not None else None)
        if state.opted_out:
            return
        if text is not None and await self.choices.speech_opt_out(state, text):
            return
        self.metrics.readings.labels(seg.kind).inc()
        line = assess(seg.audio, dropped_ms=sum(ms for t, ms in state.dropped if seg.start_s <= t <= seg.end_s))
        rules = self.policy.line
        noisy = not line.usable(rules.min_snr_db, rules.max_clipped, rules.max_dropped_share,
                                seconds=seg.end_s - seg.start_s)
        point = TrajectoryPoint(t=seg.end_s, probs=reading.probs, arousal=reading.arousal,
                                valence=reading.valence, kind=seg.kind, noisy=noisy)
        state.points.append(point)
        state.points.sort(key=lambda p: p.t)
        phase = state.phases.at((seg.start_s + seg.end_s) / 2)
        state.phases.add(phase, reading.probs.get("angry", 0.0), reading.valence)
        extra: dict[str, Any] = {"phase_stats": state.phases.summary(), "peak_anger": round(state.phases.peak_anger, 3)}
        esc = self.policy.text.escalation
        if text is not None and not state.asked_manager and (
                says_any(text.snippet, MANAGER_PHRASES) or (esc is not None and esc.intent in text.intents)):
            state.asked_manager = True  # the classifier hears "someone senior", "higher up" too
        if state.asked_manager:
            extra["asked_manager"] = "1"
        record = ReadingRecord(
            t=seg.end_s, kind=seg.kind, start_s=seg.start_s, end_s=seg.end_s, label=reading.label,
            probs=reading.probs, arousal=reading.arousal, valence=reading.valence, model=reading.model,
            transcript=text.snippet if text else "", sentiment=text.sentiment if text else None,
            intents=tuple(sorted(text.intents)) if text else (), phase=phase,
            original=text.original if text else "", language=state.language, line=line.as_dict(), noisy=noisy)
        self._persist(state, lambda: self.store.add_reading(call_sid=state.call_sid, reading=record,
                                                            summary_extra=extra))
        if state.decision is None:
            if seg.kind == "utterance":
                await self.routing.decide(state, received, "first utterance", at=seg.end_s)
        elif not state.ended:
            await self.routing.after_decision(state)

    async def _late_text(self, state: CallState, signals: TextSignals, at: float) -> None:
        """Store a transcript that missed the first decision (at its utterance's end), and let it re-route."""
        if await self.choices.speech_opt_out(state, signals):
            return
        await self._persist(state, lambda: self.store.add_transcript(
            call_sid=state.call_sid, t=at, text=signals.snippet, sentiment=signals.sentiment,
            intents=tuple(sorted(signals.intents)), original=signals.original, language=state.language))
        if state.decision is not None and not state.ended:
            await self.routing.after_decision(state, late=True)

    async def end_call(self, call_sid: str, reason: str) -> None:
        """Finish a call (stream stop, socket closed, or status callback); idempotent.

        A caller who opted out is not finished when their stream stops (the call goes on to the
        keypad menu and a queue): this process only lets go of it; the status callback ends it.
        """
        state = self.calls.get(call_sid)
        if state is None or state.ended:
            return
        if state.opted_out and reason in ("stop", "socket_closed", "idle_timeout"):
            if state.stream_gone:
                return
            state.stream_gone = True
            if state.timer is not None:
                state.timer.cancel()
            await self._persist(state, lambda: self.store.release(call_sid=call_sid, owner=self.process_id))
            if state.ended:
                return  # the status callback ended the call meanwhile
            self.metrics.live_calls.dec()
            del self.calls[call_sid]
            log.info("call %s: stream stopped after the opt-out; the call goes on without analysis", call_sid)
            return
        state.ended = True
        for seg in state.segmenter.flush():
            self._spawn(state, self._score(state, seg, time.perf_counter()))
        if state.timer is not None:
            state.timer.cancel()
        pending = [t for t in state.tasks if t is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending, timeout=10)
        await self._persist(state, lambda: self.store.call_ended(call_sid=call_sid, t=state.segmenter.seconds,
                                                                 reason=reason, owner=self.process_id))
        self.metrics.live_calls.dec()
        del self.calls[call_sid]
        log.info("call %s ended (%s)", call_sid, reason)

    async def shutdown(self) -> None:
        """End every live call (server stopping)."""
        for sid in list(self.calls):
            await self.end_call(sid, "server_shutdown")


def trajectory_of(entries: list[dict[str, Any]]) -> list[TrajectoryPoint]:
    """Return the trajectory points of stored timeline entries (readings only, decoded), oldest first."""
    points = []
    for e in entries:
        if e.get("type") != "reading" or not isinstance(e.get("probs"), dict):
            continue
        try:
            points.append(TrajectoryPoint(t=float(e["t"]), probs={k: float(v) for k, v in e["probs"].items()},
                                          arousal=float(e["arousal"]), valence=float(e["valence"]),
                                          kind=str(e.get("kind", "utterance"))))
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(points, key=lambda p: p.t)
