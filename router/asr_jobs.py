"""Transcription as jobs on Redis Streams, for inference workers on any host.

A web process XADDs each utterance to the stream of its urgency (``urgent``: a caller waiting
for a decision; ``normal``: a routed caller's later sentence; ``spare``: partials) with a
deadline and the results stream it reads. ``emoroute worker`` processes read the streams with
XREADGROUP in that order (urgency survives the move), transcribe, XADD the result back and
XACK. A worker killed mid-job loses nothing: another reclaims its pending jobs with XAUTOCLAIM
once they have been idle ``claim_idle_ms``. A job past its deadline is dropped and counted,
never transcribed late.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis.exceptions import RedisError, ResponseError

from audio_models.asr_queue import NORMAL, SPARE, URGENT
from audio_models.transcribe import TranscriptSegment
from router import keys

log = logging.getLogger(__name__)
URGENCY_NAMES = {URGENT: "urgent", NORMAL: "normal", SPARE: "spare"}
JOBS_MAXLEN = 10_000  # per urgency; deadlines keep it far shorter in practice
RESULTS_TTL_S = 120


@dataclass(frozen=True)
class JobPolicy:
    """How long each urgency's job may wait before it is worthless."""

    urgent_s: float = 15.0
    normal_s: float = 30.0
    spare_s: float = 3.0

    def deadline(self, priority: int, now: float) -> float:
        """Return the deadline of a job submitted ``now`` at ``priority``."""
        return now + {URGENT: self.urgent_s, NORMAL: self.normal_s}.get(priority, self.spare_s)


def pcm16(audio: np.ndarray) -> bytes:
    """Return 16 kHz float32 audio as little-endian 16-bit PCM (half the bytes on the wire)."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def from_pcm16(data: bytes) -> np.ndarray:
    """Return 16-bit PCM bytes as float32 audio."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0


def segment_fields(segment: TranscriptSegment) -> dict[str, str]:
    """Return a transcript as the fields of a result entry."""
    return {"text": segment.text, "alternatives": json.dumps(list(segment.alternatives)),
            "confidence": str(segment.confidence), "engine": segment.engine}


def segment_of(fields: dict[bytes, bytes]) -> TranscriptSegment:
    """Return the transcript of a result entry."""
    text = fields.get(b"text", b"").decode()
    return TranscriptSegment(text=text, confidence=float(fields.get(b"confidence", b"0") or 0),
                             engine=fields.get(b"engine", b"").decode(),
                             alternatives=tuple(json.loads(fields.get(b"alternatives", b"[]"))))


async def ensure_groups(redis: Any) -> None:
    """Create the consumer group on every job stream (idempotent)."""
    for urgency in keys.ASR_URGENCIES:
        try:
            await redis.xgroup_create(keys.asr_jobs(urgency), keys.ASR_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


class RemoteTranscriber:
    """The web side: submit utterances as jobs and await their transcripts from this process's results stream."""

    def __init__(self, redis: Any, *, process_id: str, policy: JobPolicy | None = None) -> None:
        """Use ``redis`` (a client with decode_responses=False: the audio is binary)."""
        self.redis = redis
        self.process_id = process_id
        self.policy = policy or JobPolicy()
        self.name = "whisper via Redis Streams workers"
        self.workers = 1
        self._waiting: dict[str, asyncio.Future[TranscriptSegment]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Create the groups and start reading results."""
        await ensure_groups(self.redis)
        self._reader = asyncio.create_task(self._read_results(), name="asr-results")

    async def stop(self) -> None:
        """Stop reading; jobs still out fail their callers."""
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for future in self._waiting.values():
            if not future.done():
                future.cancel()

    async def transcribe(self, audio: np.ndarray, priority: int = URGENT, call_sid: str = "") -> TranscriptSegment:
        """Return the transcript of ``audio`` from a worker, or raise TimeoutError past the job's deadline."""
        job_id = uuid.uuid4().hex
        now = time.time()
        deadline = self.policy.deadline(priority, now)
        future: asyncio.Future[TranscriptSegment] = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = future
        try:
            await self.redis.xadd(keys.asr_jobs(URGENCY_NAMES.get(priority, "spare")),
                                  {"id": job_id, "reply": keys.asr_results(self.process_id),
                                   "deadline": f"{deadline:.3f}", "call_sid": call_sid, "audio": pcm16(audio)},
                                  maxlen=JOBS_MAXLEN, approximate=True)
            # a little past the deadline: a worker that started just before it may still answer
            return await asyncio.wait_for(future, deadline - now + 2.0)
        finally:
            self._waiting.pop(job_id, None)

    async def _read_results(self) -> None:
        stream, last = keys.asr_results(self.process_id), "0-0"  # the stream is this process's own
        while True:
            try:
                replies = await self.redis.xread({stream: last}, block=1000, count=100)
            except (RedisError, OSError) as exc:
                log.warning("results stream unreadable (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
                continue
            for _, entries in replies or []:
                for entry_id, fields in entries:
                    last = entry_id
                    future = self._waiting.get(fields.get(b"id", b"").decode())
                    if future is not None and not future.done():
                        future.set_result(segment_of(fields))
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.xtrim(stream, minid=last)

    async def backlog(self) -> dict[str, dict[str, int]]:
        """Return, per urgency, the jobs not yet acknowledged (``length``) and those a worker holds (``pending``)."""
        out: dict[str, dict[str, int]] = {}
        for urgency in keys.ASR_URGENCIES:
            stream = keys.asr_jobs(urgency)
            length = int(await self.redis.xlen(stream))
            pending = await self.redis.xpending(stream, keys.ASR_GROUP)
            out[urgency] = {"length": length, "pending": int(pending.get("pending", 0) if pending else 0)}
        return out
