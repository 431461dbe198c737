"""Live calls: from typed stream events to emotion readings, a decision, a queue, a timeline.

One :class:`CallCoordinator` serves all calls. Per call it keeps a VAD
segmenter and the trajectory; segments are scored by the shared batching
scorer; the first finished utterance (or ``max_listen_seconds`` of audio)
triggers the routing decision, which is sent to Twilio first and stored after (a slow
Redis never delays a redirect; each call's writes keep their order). Once an agent has the
call it stays with the agent: later readings and transcripts still reach the timeline and
the agent's cues, but nothing re-queues or redirects it. One call's failure is logged with
its SID and never touches another call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audio_models.asr_queue import NORMAL, SPARE, URGENT
from audio_models.pipeline import BatchingScorer, Segment, SegmenterConfig, StreamSegmenter, WorkDropped
from audio_models.transcribe import TranscriptSegment
from router.metrics import Metrics
from router.policy import Decision, Policy, TextSignals, TrajectoryPoint, decide, reprioritise
from router.redact import mask_phone, names_secret
from router.store import CallStore, ReadingRecord
from router.text import TextAnalyser
from telephony.actions import CallActions, RouteSpec
from telephony.events import AudioChunk, CallEnded, CallStarted, StreamEvent

log = logging.getLogger(__name__)
SENSITIVE_WINDOW_S = 30.0  # how long (call audio time) short numbers stay masked after a card/PIN is named


@dataclass
class CallState:
    """What the coordinator knows about one live call."""

    call_sid: str
    caller: str
    started_wall: float
    segmenter: StreamSegmenter
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


class CallCoordinator:
    """Routes every live call; feed it the serializer's events with :meth:`handle`."""

    def __init__(
        self,
        *,
        policy: Policy,
        store: CallStore,
        scorer: BatchingScorer,
        actions: CallActions,
        vad_factory: Callable[[], Callable[[np.ndarray], float]],
        metrics: Metrics,
        text_analyser: TextAnalyser,
        transcribe: Callable[[np.ndarray, int], Coroutine[Any, Any, TranscriptSegment]] | None = None,
        transcript_wait_s: float = 1.0,
        segmenter_cfg: SegmenterConfig | None = None,
        partial_every_s: float = 0.0,
        asr_workers: int = 1,
        process_id: str = "",
    ) -> None:
        """Wire the coordinator to its collaborators (``transcribe`` None = no ASR).

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
        self.vad_factory = vad_factory
        self.metrics = metrics
        self.segmenter_cfg = segmenter_cfg or SegmenterConfig()
        self.text_analyser = text_analyser
        self._transcribe_fn = transcribe
        self.transcribe = self._counted_transcribe if transcribe is not None else None
        self.transcript_wait_s = transcript_wait_s
        self.partial_every_s = partial_every_s
        self.asr_workers = asr_workers
        self.process_id = process_id  # this web process, recorded as the owner of its calls
        self.asr_in_flight = 0
        self.calls: dict[str, CallState] = {}
        self.decision_latencies_ms: list[float] = []

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
            segmenter=StreamSegmenter(vad, self.segmenter_cfg),
        )
        self.calls[event.call_sid] = state
        self.metrics.calls.inc()
        self.metrics.live_calls.inc()
        self._persist(state, lambda: self.store.call_started(call_sid=event.call_sid, stream_sid=event.stream_sid,
                                                             caller=state.caller, started_at=state.started_wall,
                                                             owner=self.process_id))
        state.timer = self._spawn(state, self._listen_timeout(state))
        log.info("call %s from %s started (stream %s)", event.call_sid, mask_phone(state.caller), event.stream_sid)

    async def _audio(self, event: AudioChunk) -> None:
        state = self.calls.get(event.call_sid)
        if state is None or state.ended:
            return
        received = time.perf_counter()
        # silero's ONNX VAD costs ~0.25 ms per 32 ms of audio: cheaper inline than a thread hop.
        segments = state.segmenter.feed(event.samples)
        for seg in segments:
            self._spawn(state, self._score(state, seg, received))
        if self.transcribe is not None and self.partial_every_s > 0:
            self._maybe_partial(state, any(seg.kind == "utterance" for seg in segments))
        # An utterance that already closed decides as soon as it is scored; the
        # listening limit only covers callers who have not finished one.
        if state.decision is None and not state.deciding and state.utterances_in_flight == 0 and (
            state.segmenter.seconds >= self.policy.decision.max_listen_seconds
        ):
            self._spawn(state, self._decide(state, None, "listening time reached"))

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
        else:
            log.warning("unknown control request %s", request)

    def mark_with_agent(self, call_sid: str) -> None:
        """An agent has the call (picked here, or TaskRouter said so): it is never re-queued or redirected."""
        state = self.calls.get(call_sid)
        if state is not None:
            state.with_agent = True

    async def _counted_transcribe(self, audio: np.ndarray, priority: int = URGENT) -> TranscriptSegment:
        assert self._transcribe_fn is not None
        self.asr_in_flight += 1
        try:
            return await self._transcribe_fn(audio, priority)
        finally:
            self.asr_in_flight -= 1

    def _maybe_partial(self, state: CallState, utterance_closed: bool) -> None:
        """Start a partial transcript of the open utterance when one is due and ASR has room."""
        seg = state.segmenter
        if utterance_closed or not seg.in_speech:
            state.partial_due_s = self.partial_every_s
        if (not seg.in_speech or seg.open_seconds < state.partial_due_s or state.partial_busy
                or self.asr_in_flight >= self.asr_workers):
            return
        state.partial_busy = True
        state.partial_due_s = seg.open_seconds + self.partial_every_s
        self._spawn(state, self._partial(state, seg.open_audio(), seg.open_start_s, seg.seconds))

    async def _partial(self, state: CallState, audio: np.ndarray, start_s: float, t: float) -> None:
        try:
            assert self.transcribe is not None
            segment = await self.transcribe(audio, SPARE)
        except WorkDropped:
            self.metrics.dropped.labels("partial_transcript").inc()
            return
        except Exception:  # noqa: BLE001 - a failed partial changes nothing; the final still comes
            self.metrics.errors.labels("transcriber").inc()
            log.exception("call %s: partial transcription failed", state.call_sid)
            return
        finally:
            state.partial_busy = False
        if segment.empty or state.ended:
            return
        signals = await self._analyse(state, segment, t)
        state.partial = (start_s, signals)
        self.metrics.transcripts.labels("partial").inc()
        self._persist(state, lambda: self.store.add_partial(call_sid=state.call_sid, t=t, text=signals.snippet,
                                                            intents=tuple(sorted(signals.intents))))

    async def _analyse(self, state: CallState, segment: TranscriptSegment, at: float) -> TextSignals:
        """Analyse a transcript; short numbers are masked while the caller's recent speech names a secret."""
        if names_secret(segment.text) or any(names_secret(a) for a in segment.alternatives):
            state.sensitive_until = max(state.sensitive_until, at + SENSITIVE_WINDOW_S)
        sensitive = at <= state.sensitive_until
        # off the event loop: the semantic intent classifier runs a sentence encoder (60-90 ms a reading)
        return await asyncio.to_thread(self.text_analyser.analyse, segment.text, segment.alternatives,
                                       sensitive=sensitive)

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
            await self._decide(state, None, "listening time reached (wall clock)")

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
        asr: asyncio.Task[TranscriptSegment] | None = (
            asyncio.create_task(self.transcribe(seg.audio, URGENT if state.decision is None else NORMAL))
            if self.transcribe is not None and seg.kind == "utterance" else None)
        try:
            reading = await self.scorer.score(seg.audio, droppable=seg.kind != "utterance")
        except WorkDropped:
            self.metrics.dropped.labels("emotion_window").inc()
            return
        except Exception:  # noqa: BLE001 - a model failure must still route the call
            self.metrics.errors.labels("emotion_model").inc()
            log.exception("call %s: emotion model failed on %s %.1f-%.1fs", state.call_sid, seg.kind,
                          seg.start_s, seg.end_s)
            if asr is not None:
                await self._await_text(state, asr, seg.end_s, seg.start_s)
            if seg.kind == "utterance" and state.decision is None:
                await self._decide(state, received, "emotion model failed", at=seg.end_s)
            return
        text = await self._await_text(state, asr, seg.end_s, seg.start_s) if asr is not None else None
        self.metrics.readings.labels(seg.kind).inc()
        point = TrajectoryPoint(t=seg.end_s, probs=reading.probs, arousal=reading.arousal,
                                valence=reading.valence, kind=seg.kind)
        state.points.append(point)
        state.points.sort(key=lambda p: p.t)
        record = ReadingRecord(
            t=seg.end_s, kind=seg.kind, start_s=seg.start_s, end_s=seg.end_s, label=reading.label,
            probs=reading.probs, arousal=reading.arousal, valence=reading.valence, model=reading.model,
            transcript=text.snippet if text else "", sentiment=text.sentiment if text else None,
            intents=tuple(sorted(text.intents)) if text else ())
        self._persist(state, lambda: self.store.add_reading(call_sid=state.call_sid, reading=record))
        if state.decision is None:
            if seg.kind == "utterance":
                await self._decide(state, received, "first utterance", at=seg.end_s)
        elif not state.ended:
            await self._after_decision(state)

    async def _await_text(
        self, state: CallState, task: asyncio.Task[TranscriptSegment], at: float, start_s: float | None = None
    ) -> TextSignals | None:
        """Return the analysed transcript; the first decision waits at most transcript_wait_s for it.

        If the final transcript misses that wait, the utterance's latest partial (if any) stands in.
        """
        try:
            if state.decision is None:
                segment = await asyncio.wait_for(asyncio.shield(task), self.transcript_wait_s)
            else:
                segment = await task
        except WorkDropped:
            self.metrics.dropped.labels("transcript").inc()
            return None
        except TimeoutError:
            if task.done():  # the transcriber itself gave up (a remote job past its deadline)
                self.metrics.errors.labels("transcriber").inc()
                log.warning("call %s: no transcript (the job expired)", state.call_sid)
                return None
            self.metrics.errors.labels("transcript_timeout").inc()
            self._spawn(state, self._late_transcript(state, task, at))
            if state.partial is not None and start_s is not None and abs(state.partial[0] - start_s) < 0.05:
                log.info("call %s: transcript not ready within %.1fs; deciding on the partial transcript",
                         state.call_sid, self.transcript_wait_s)
                self.metrics.transcripts.labels("partial_decided").inc()
                state.texts.append(state.partial[1])
                return state.partial[1]
            log.warning("call %s: transcript not ready within %.1fs; deciding on tone alone", state.call_sid,
                        self.transcript_wait_s)
            return None
        except Exception:  # noqa: BLE001 - ASR trouble must not stop routing
            self.metrics.errors.labels("transcriber").inc()
            log.exception("call %s: transcription failed", state.call_sid)
            return None
        if segment.empty:
            return None
        signals = await self._analyse(state, segment, at)
        state.texts.append(signals)
        return signals

    async def _late_transcript(self, state: CallState, task: asyncio.Task[TranscriptSegment], at: float) -> None:
        """Store a transcript that missed the first decision (at its utterance's end), and let it re-route."""
        signals = await self._await_text(state, task, at)
        if signals is None:
            return
        await self._persist(state, lambda: self.store.add_transcript(
            call_sid=state.call_sid, t=at, text=signals.snippet, sentiment=signals.sentiment,
            intents=tuple(sorted(signals.intents))))
        if state.decision is not None and not state.ended:
            await self._after_decision(state)

    @staticmethod
    def _text(state: CallState) -> TextSignals | None:
        if not state.texts:
            return None
        sentiments = [t.sentiment for t in state.texts if t.sentiment is not None]
        return TextSignals(
            sentiment=sum(sentiments) / len(sentiments) if sentiments else None,
            intents=frozenset().union(*(t.intents for t in state.texts)),
            snippet=state.texts[-1].snippet,
        )

    async def _decide(self, state: CallState, closed_at: float | None, trigger: str, at: float | None = None) -> None:
        """Route the call; ``at`` is the call time (s) of what triggered it, default the audio heard so far.

        The redirect goes out first; the decision is stored after it, in the call's write order.
        Without any reading (the model failed or the caller never spoke) the policy's safe default
        queue is what ``decide`` returns.
        """
        if state.decision is not None or state.deciding:
            return
        state.deciding = True
        decision = decide(state.points, self._text(state), self.policy)
        state.decision = decision
        state.arrival = time.time()
        t = at if at is not None else state.segmenter.seconds
        if state.ended or state.with_agent:
            log.info("call %s: %s before routing; decision stored, no redirect", state.call_sid,
                     "caller hung up" if state.ended else "an agent has the call")
        else:
            self._spawn(state, self._send_route(state, decision))
        latency_ms = (time.perf_counter() - closed_at) * 1000 if closed_at is not None else None
        if latency_ms is not None:
            self.metrics.decision_latency.observe(latency_ms / 1000)
            self.decision_latencies_ms.append(latency_ms)
        self.metrics.decisions.labels(decision.queue, decision.rule).inc()
        log.info("call %s -> %s priority %d (%s; %s)", state.call_sid, decision.queue, decision.priority,
                 decision.reason, trigger)
        applied = await self._persist(state, lambda: self.store.record_decision(
            call_sid=state.call_sid, decision=decision, t=t, arrival=state.arrival, latency_ms=latency_ms))
        if applied is False:
            log.info("call %s: decision not queued (the call ended or an agent has it)", state.call_sid)

    async def _send_route(self, state: CallState, decision: Decision) -> None:
        last = state.points[-1] if state.points else None
        spec = RouteSpec(
            twilio_queue=self.policy.queues[decision.queue].twilio_queue,
            priority=decision.priority,
            attributes={"call_sid": state.call_sid, "reason": decision.reason,
                        "emotion": max(last.probs, key=lambda k: last.probs[k]) if last else "unknown"},
            hold_prompt=self.policy.prompts.hold,
            voice=self.policy.prompts.voice,
        )
        try:
            await self.actions.route_call(state.call_sid, spec)
        except Exception:  # noqa: BLE001 - the TwiML <Redirect> fallback still enqueues the caller
            self.metrics.errors.labels("twilio_rest").inc()
            log.exception("call %s: Twilio redirect failed; the call falls back to the default queue",
                          state.call_sid)

    async def _requeue(self, state: CallState, decision: Decision, kind: str) -> bool:
        """Store a re-route or new priority if the call is still queued; return whether it was applied.

        Redis decides atomically (router.store.QUEUE_CALL_LUA): a call with an agent, or ended, is
        never re-queued. When Redis cannot say (outage), nothing is sent to Twilio either.
        """
        applied = await self._persist(state, lambda: self.store.record_decision(
            call_sid=state.call_sid, decision=decision, t=state.points[-1].t, arrival=state.arrival,
            latency_ms=None, kind=kind))
        if applied is False:
            state.with_agent = True
            log.info("call %s: %s not applied: the call is no longer queued (with an agent or ended)",
                     state.call_sid, kind)
        return bool(applied)

    async def _after_decision(self, state: CallState) -> None:
        """Re-route when the caller later says something that routes elsewhere; else maybe raise priority."""
        assert state.decision is not None
        if state.with_agent or state.ended:
            return
        fresh = decide(state.points, self._text(state), self.policy)
        if fresh.queue != state.decision.queue and fresh.rule.startswith("text"):
            if not await self._requeue(state, fresh, "reroute"):
                return
            state.decision = fresh
            await self._send_route(state, fresh)
            log.info("call %s re-routed to %s (%s)", state.call_sid, fresh.queue, fresh.reason)
            return
        new_priority = reprioritise(state.decision.priority, state.points, self.policy)
        if new_priority <= state.decision.priority:
            return
        raised = Decision(state.decision.queue, new_priority,
                          f"{state.decision.reason}; anger rising while waiting", state.decision.rule)
        if not await self._requeue(state, raised, "reprioritise"):
            return
        state.decision = raised
        try:
            await self.actions.update_priority(state.call_sid, new_priority)
        except Exception:  # noqa: BLE001 - our own queue already holds the new priority
            self.metrics.errors.labels("twilio_rest").inc()
            log.exception("call %s: TaskRouter priority update failed", state.call_sid)
        log.info("call %s: priority raised to %d", state.call_sid, new_priority)

    async def end_call(self, call_sid: str, reason: str) -> None:
        """Finish a call (stream stop, socket closed, or status callback); idempotent."""
        state = self.calls.get(call_sid)
        if state is None or state.ended:
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
