"""The live audio pipeline: segment a call's stream and score emotion in batches across calls.

``StreamSegmenter`` turns a call's 16 kHz audio into utterances (VAD) and
sliding windows (e.g. 3 s every 1 s while speech continues). ``BatchingScorer``
collects scoring requests from all concurrent calls and runs them through the
emotion model in one batch call (length-sorted passes of at most 8), in a worker thread, so the event loop never
blocks on the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from audio_models.emotion import EmotionModel, EmotionReading
from audio_models.vad import VAD_CHUNK

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Segment:
    """A stretch of caller audio to score: a finished utterance or a sliding window."""

    kind: str  # "utterance" or "window"
    start_s: float
    end_s: float
    audio: np.ndarray


@dataclass(frozen=True)
class SegmenterConfig:
    """VAD and windowing settings."""

    speech_threshold: float = 0.5
    min_speech_ms: float = 250.0
    min_silence_ms: float = 400.0
    window_s: float = 3.0
    hop_s: float = 1.0
    max_utterance_s: float = 10.0


class StreamSegmenter:
    """Feed 16 kHz audio in any chunk size; get back the segments it completes."""

    def __init__(self, speech_prob: Callable[[np.ndarray], float] | None, cfg: SegmenterConfig | None = None):
        """Use ``speech_prob`` (e.g. ``SileroVAD().speech_probability``) on 512-sample chunks.

        ``speech_prob`` None: the caller scores the chunks itself (:meth:`chunks`, then
        :meth:`advance`; the live path scores every call's chunks together, audio_models.vad.BatchedVAD).
        """
        self.cfg = cfg or SegmenterConfig()
        self._speech_prob = speech_prob
        self._pending = np.zeros(0, dtype=np.float32)
        self._consumed = 0  # samples fed to the VAD so far
        self._utterance: list[np.ndarray] = []
        self._utt_start = 0
        self._speech_samples = 0
        self._silence_samples = 0
        self._next_window_at = 0
        self.utterances = 0

    @property
    def seconds(self) -> float:
        """Return how much audio the VAD has consumed."""
        return self._consumed / SAMPLE_RATE

    @property
    def in_speech(self) -> bool:
        """Return whether an utterance is open."""
        return bool(self._utterance)

    @property
    def open_start_s(self) -> float:
        """Return where the open utterance started (seconds into the stream)."""
        return self._utt_start / SAMPLE_RATE

    @property
    def open_seconds(self) -> float:
        """Return how long the open utterance is so far (0 when none is open)."""
        return (self._consumed - self._utt_start) / SAMPLE_RATE if self._utterance else 0.0

    def open_audio(self) -> np.ndarray:
        """Return a copy of the open utterance's audio so far (empty when none is open)."""
        return np.concatenate(self._utterance) if self._utterance else np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray) -> list[Segment]:
        """Return the segments completed by these samples."""
        if self._speech_prob is None:
            raise TypeError("this segmenter's chunks are scored by its caller: use chunks() and advance()")
        chunks = self.chunks(samples)
        return self.advance(chunks, [self._speech_prob(chunk) for chunk in chunks])

    def chunks(self, samples: np.ndarray) -> list[np.ndarray]:
        """Take ``samples`` in; return the whole VAD chunks now ready (the rest waits for more audio)."""
        self._pending = np.concatenate([self._pending, samples.astype(np.float32)])
        n = len(self._pending) // VAD_CHUNK
        ready = [self._pending[i * VAD_CHUNK : (i + 1) * VAD_CHUNK] for i in range(n)]
        self._pending = self._pending[n * VAD_CHUNK :]
        return ready

    def advance(self, chunks: list[np.ndarray], speech_probs: list[float]) -> list[Segment]:
        """Return the segments completed by ``chunks`` (from :meth:`chunks`, in order) and their P(speech)."""
        out: list[Segment] = []
        for chunk, prob in zip(chunks, speech_probs, strict=True):
            out.extend(self._step(chunk, prob >= self.cfg.speech_threshold))
        return out

    def flush(self) -> list[Segment]:
        """Return the open utterance as a final segment (the stream ended)."""
        if self._utterance and self._speech_samples >= self.cfg.min_speech_ms * SAMPLE_RATE / 1000:
            return [self._close()]
        self._utterance = []
        return []

    def _step(self, chunk: np.ndarray, is_speech: bool) -> list[Segment]:
        cfg = self.cfg
        self._consumed += len(chunk)
        out: list[Segment] = []
        if not self._utterance:
            if is_speech:
                self._utterance = [chunk]
                self._utt_start = self._consumed - len(chunk)
                self._speech_samples, self._silence_samples = len(chunk), 0
                self._next_window_at = self._utt_start + int(cfg.window_s * SAMPLE_RATE)
            return out
        self._utterance.append(chunk)
        if is_speech:
            self._speech_samples += len(chunk)
            self._silence_samples = 0
        else:
            self._silence_samples += len(chunk)
        length = self._consumed - self._utt_start
        if self._silence_samples >= cfg.min_silence_ms * SAMPLE_RATE / 1000:
            if self._speech_samples >= cfg.min_speech_ms * SAMPLE_RATE / 1000:
                out.append(self._close())
            else:
                self._utterance = []
            return out
        if length >= cfg.max_utterance_s * SAMPLE_RATE:
            out.append(self._close())
            return out
        if is_speech and self._consumed >= self._next_window_at:
            audio = np.concatenate(self._utterance)[-int(cfg.window_s * SAMPLE_RATE):]
            out.append(Segment("window", (self._consumed - len(audio)) / SAMPLE_RATE,
                               self._consumed / SAMPLE_RATE, audio))
            self._next_window_at = self._consumed + int(cfg.hop_s * SAMPLE_RATE)
        return out

    def _close(self) -> Segment:
        audio = np.concatenate(self._utterance)
        keep = len(audio) - max(self._silence_samples - int(0.1 * SAMPLE_RATE), 0)
        seg = Segment("utterance", self._utt_start / SAMPLE_RATE,
                      (self._utt_start + keep) / SAMPLE_RATE, audio[:keep])
        self._utterance = []
        self.utterances += 1
        return seg


@dataclass
class _Request:
    audio: np.ndarray
    future: asyncio.Future[EmotionReading]
    droppable: bool = False


class WorkDropped(RuntimeError):
    """Work was dropped because its queue overflowed (only work that may be dropped ever is)."""


class BatchingScorer:
    """Scores audio from many concurrent calls in shared forward passes.

    The queue is bounded: past ``max_pending`` waiting requests, the oldest droppable one (a
    sliding window, not an utterance) fails with :class:`WorkDropped` to make room. Utterances
    are never dropped; their number is bounded by the streams a process accepts.
    """

    def __init__(self, model: EmotionModel, *, max_batch: int = 16, max_wait_ms: float = 8.0,
                 max_pending: int = 256) -> None:
        """Batch up to ``max_batch`` requests, waiting at most ``max_wait_ms`` for company."""
        self.model = model
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: deque[_Request] = deque()
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emotion-model")
        self.batches = 0
        self.items = 0
        self.last_batch_ms = 0.0

    async def start(self) -> None:
        """Start the batching worker on the running loop."""
        self._arrived = asyncio.Event()
        self._worker = asyncio.create_task(self._run(), name="emotion-batcher")

    async def stop(self) -> None:
        """Stop the worker; pending requests fail with CancelledError."""
        if self._worker:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def score(self, audio: np.ndarray, *, droppable: bool = False) -> EmotionReading:
        """Return the emotion reading for one stretch of 16 kHz audio.

        Raises:
            WorkDropped: ``droppable`` work pushed out of a full queue.
        """
        if self._arrived is None:
            raise RuntimeError("BatchingScorer.start() was not awaited")
        future: asyncio.Future[EmotionReading] = asyncio.get_running_loop().create_future()
        if len(self._pending) >= self.max_pending:
            self._make_room(droppable)
        self._pending.append(_Request(audio, future, droppable))
        self._arrived.set()
        return await future

    @property
    def waiting(self) -> int:
        """Return how many requests wait for a batch."""
        return len(self._pending)

    def _make_room(self, incoming_droppable: bool) -> None:
        """Fail the oldest droppable waiting request (or the incoming one, if it is droppable)."""
        victim = next((r for r in self._pending if r.droppable), None)
        if victim is None:
            if incoming_droppable:
                self.dropped += 1
                raise WorkDropped("emotion queue full: sliding window dropped")
            return
        self._pending.remove(victim)
        self.dropped += 1
        if not victim.future.done():
            victim.future.set_exception(WorkDropped("emotion queue full: oldest sliding window dropped"))

    async def _run(self) -> None:
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = loop.time() + self.max_wait
            while len(self._pending) < self.max_batch and loop.time() < deadline:
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
            batch = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
            batch = [r for r in batch if not r.future.done()]
            if not batch:
                continue
            started = time.perf_counter()
            try:
                readings = await loop.run_in_executor(
                    self._executor, self.model.classify_batch, [r.audio for r in batch]
                )
            except Exception as exc:  # noqa: BLE001 - one bad batch must fail its callers, not the worker
                log.exception("emotion model failed on a batch of %d", len(batch))
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(exc)
                continue
            self.last_batch_ms = (time.perf_counter() - started) * 1000
            self.batches += 1
            self.items += len(batch)
            for r, reading in zip(batch, readings, strict=True):
                if not r.future.done():
                    r.future.set_result(reading)
