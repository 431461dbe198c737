"""Transcription as jobs on Redis Streams, for inference workers on any host.

A web process XADDs each utterance to the stream of its urgency (``urgent``: a caller waiting
for a decision; ``normal``: a routed caller's later sentence; ``spare``: partials) with a
deadline and the results stream it reads. ``emoroute worker`` processes read the streams with
XREADGROUP in that order (urgency survives the move), transcribe, XADD the result back and
XACK. A worker killed mid-job loses nothing: another reclaims its pending jobs with XAUTOCLAIM
once they have been idle ``claim_idle_ms``. A job past its deadline is dropped and counted,
never transcribed late.

What a job and its result carry is protected where Redis keeps it (memory, the append-only
file, replicas): the utterance's audio and the transcript are sealed with AES-256-GCM under a
key derived from ``EMOROUTE_SECRET_KEY`` (:class:`JobCipher`; the job's id is the associated
data), the transcript is redacted by the worker before it is sealed, a job names its call (so an
opt-out or erasure reaches it), and a job is deleted when done, dropped past its deadline, and
trimmed by age (``XADD MINID``) so jobs nobody takes never pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.exceptions import RedisError, ResponseError

from audio_models.asr_queue import NORMAL, SPARE, URGENT
from audio_models.transcribe import TOP_KEPT, TranscriptSegment
from router import keys
from router.tasks import stop_tasks

log = logging.getLogger(__name__)
URGENCY_NAMES = {URGENT: "urgent", NORMAL: "normal", SPARE: "spare"}
RESULTS_TTL_S = 120
JOB_KEY_LABEL = b"emoroute asr jobs v1"


class JobUnreadable(ValueError):
    """A sealed field that this key cannot open (another key, or tampered with)."""


class JobCipher:
    """Seals what job and result entries carry (AES-256-GCM; key derived from the server secret)."""

    def __init__(self, secret_key: str) -> None:
        """Derive this deployment's job key from ``secret_key`` (web processes and workers share it)."""
        self._aead = AESGCM(hmac.new(secret_key.encode(), JOB_KEY_LABEL, hashlib.sha256).digest())

    def seal(self, data: bytes, job_id: str) -> bytes:
        """Return ``data`` encrypted and authenticated, bound to ``job_id``."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, job_id.encode())

    def open(self, blob: bytes, job_id: str) -> bytes:
        """Return what :meth:`seal` sealed for ``job_id``; raise JobUnreadable otherwise."""
        try:
            return self._aead.decrypt(blob[:12], blob[12:], job_id.encode())
        except (InvalidTag, ValueError) as exc:
            raise JobUnreadable(f"job {job_id[:40]!r}: sealed field unreadable with this secret key") from exc


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


def max_job_age_s(policy: JobPolicy) -> float:
    """Return how old a job may be before it is worthless to every urgency (the age trim's bound)."""
    return max(policy.urgent_s, policy.normal_s, policy.spare_s) + 5.0


def job_fields(cipher: JobCipher, *, job_id: str, reply: str, deadline: float, audio: np.ndarray,
               call_sid: str = "", sensitive: bool = False, language: str = "") -> dict[str, str | bytes]:
    """Return the fields of a job entry: the audio sealed, the call named, the redaction context flagged.

    ``language``: the call's language if an earlier utterance identified it ("" = identify it).
    """
    return {"id": job_id, "reply": reply, "deadline": f"{deadline:.3f}", "call_sid": call_sid,
            "sensitive": "1" if sensitive else "0", "language": language, "audio": cipher.seal(pcm16(audio), job_id)}


def segment_fields(segment: TranscriptSegment, cipher: JobCipher, job_id: str) -> dict[str, str | bytes]:
    """Return a (redacted) transcript as the fields of a result entry, its words sealed."""
    words = json.dumps({"text": segment.text, "alternatives": list(segment.alternatives),
                        "original": segment.original, "english": segment.english})
    return {"id": job_id, "words": cipher.seal(words.encode(), job_id), "confidence": str(segment.confidence),
            "engine": segment.engine, "language": segment.language,
            "language_probability": str(segment.language_probability), "runners_up": ",".join(segment.runners_up)}


def segment_of(fields: dict[bytes, bytes], cipher: JobCipher) -> TranscriptSegment:
    """Return the transcript of a result entry (empty if its words cannot be opened)."""
    job_id = fields.get(b"id", b"").decode()
    try:
        words = json.loads(cipher.open(fields[b"words"], job_id)) if b"words" in fields else {}
    except JobUnreadable as exc:
        log.error("%s", exc)
        words = {}
    return TranscriptSegment(text=str(words.get("text", "")), confidence=float(fields.get(b"confidence", b"0") or 0),
                             engine=fields.get(b"engine", b"").decode(),
                             alternatives=tuple(words.get("alternatives", ())),
                             original=str(words.get("original", "")), english=str(words.get("english", "")),
                             language=fields.get(b"language", b"").decode()[:8],
                             language_probability=float(fields.get(b"language_probability", b"0") or 0),
                             runners_up=tuple(c for c in fields.get(b"runners_up", b"").decode().split(",")
                                              if re.fullmatch(r"[a-z]{2,3}", c))[:TOP_KEPT])


async def drop_jobs_of_calls(redis: Any, call_sids: Iterable[str]) -> int:
    """Delete every queued job of these calls (an opt-out or an erasure); return how many went."""
    wanted = {sid.encode() for sid in call_sids}
    dropped = 0
    for urgency in keys.ASR_URGENCIES:
        stream = keys.asr_jobs(urgency)
        doomed = [entry_id for entry_id, fields in await redis.xrange(stream)
                  if fields.get(b"call_sid") in wanted]
        if doomed:
            dropped += int(await redis.xdel(stream, *doomed))
    return dropped


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

    def __init__(self, redis: Any, *, process_id: str, cipher: JobCipher, policy: JobPolicy | None = None) -> None:
        """Use ``redis`` (a client with decode_responses=False: the audio is binary) and ``cipher``."""
        self.redis = redis
        self.cipher = cipher
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
        if self._reader is not None:
            await stop_tasks([self._reader])
        for future in self._waiting.values():
            if not future.done():
                future.cancel()

    async def transcribe(self, audio: np.ndarray, priority: int = URGENT, call_sid: str = "",
                         sensitive: bool = False, language: str = "") -> TranscriptSegment:
        """Return the transcript of ``audio`` from a worker, or raise TimeoutError past the job's deadline.

        ``sensitive``: the call's recent speech named a card, PIN or account (the worker masks
        every digit run before the transcript is written back).
        """
        job_id = uuid.uuid4().hex
        now = time.time()
        deadline = self.policy.deadline(priority, now)
        future: asyncio.Future[TranscriptSegment] = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = future
        try:
            fields = job_fields(self.cipher, job_id=job_id, reply=keys.asr_results(self.process_id),
                                deadline=deadline, audio=audio, call_sid=call_sid, sensitive=sensitive,
                                language=language)
            while True:
                # the age trim: jobs older than any deadline go as new ones come, taken or not
                oldest = f"{int((time.time() - max_job_age_s(self.policy)) * 1000)}-0"
                try:
                    await self.redis.xadd(keys.asr_jobs(URGENCY_NAMES.get(priority, "spare")), fields,
                                          minid=oldest, approximate=False)
                    break
                except (RedisError, OSError):
                    # Redis away (a fail-over takes seconds): the job is worth queueing until its deadline
                    if time.time() > deadline - 1.0:
                        raise
                    await asyncio.sleep(0.25)
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
                        future.set_result(segment_of(fields, self.cipher))
                with contextlib.suppress(RedisError, OSError):  # read: nothing of it stays in Redis
                    await self.redis.xdel(stream, *(entry_id for entry_id, _ in entries))

    async def backlog(self) -> dict[str, dict[str, int]]:
        """Return, per urgency, the jobs not yet acknowledged (``length``) and those a worker holds (``pending``)."""
        out: dict[str, dict[str, int]] = {}
        for urgency in keys.ASR_URGENCIES:
            stream = keys.asr_jobs(urgency)
            length = int(await self.redis.xlen(stream))
            pending = await self.redis.xpending(stream, keys.ASR_GROUP)
            out[urgency] = {"length": length, "pending": int(pending.get("pending", 0) if pending else 0)}
        return out
