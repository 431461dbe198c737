"""``emoroute worker``: an inference worker that transcribes jobs from Redis Streams (router/asr_jobs.py).

Urgent jobs first, then normal, then spare: each round asks the streams in that order. Before
reading new work it reclaims (XAUTOCLAIM) what a dead worker left pending longer than
``claim_idle_ms``. A job past its deadline is acknowledged, counted and dropped. The worker
reports its load (``emoroute:worker:{id}``) and its figures on /metrics (stream backlog and
pending counts for an autoscaler, jobs done and dropped), and on SIGTERM it finishes the job in
hand and stops taking new ones (drain). It opens a job's sealed audio with the deployment's
secret key, and redacts the transcript before it seals it into the answer (router/asr_jobs.py).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from audio_models.transcribe import Transcriber, TranscriptSegment
from router import keys
from router.asr_jobs import JobCipher, JobUnreadable, from_pcm16, segment_fields
from router.redact import names_secret, redact
from router.slots import is_cluster

log = logging.getLogger(__name__)
RESULTS_MAXLEN = 1000
RESULTS_TTL_S = 120


@dataclass
class WorkerStats:
    """What one worker did."""

    done: int = 0
    dropped: int = 0
    reclaimed: int = 0
    failed: int = 0


class InferenceWorker:
    """Reads transcription jobs by urgency, transcribes them, answers the process that asked."""

    def __init__(self, client: redis.Redis, transcriber: Transcriber, *, cipher: JobCipher, worker_id: str,
                 claim_idle_ms: int = 5000, metrics_port: int | None = None) -> None:
        """Use ``client`` (decode_responses=False), ``transcriber``, the job ``cipher``; /metrics on a port."""
        self.redis: Any = client
        self.transcriber = transcriber
        self.cipher = cipher
        self.worker_id = worker_id
        self.claim_idle_ms = claim_idle_ms
        self.stats = WorkerStats()
        self.stopping = threading.Event()
        self._last_claim = 0.0
        self.registry = CollectorRegistry()
        self._done = Counter("emoroute_worker_jobs_total", "Transcription jobs done", registry=self.registry)
        self._dropped = Counter("emoroute_worker_jobs_dropped_total", "Jobs dropped past their deadline",
                                registry=self.registry)
        self._backlog = Gauge("emoroute_asr_stream_length", "Jobs not yet acknowledged, per urgency", ["urgency"],
                              registry=self.registry)
        self._pending = Gauge("emoroute_asr_stream_pending", "Jobs a worker holds, per urgency", ["urgency"],
                              registry=self.registry)
        self._busy = Gauge("emoroute_worker_busy", "1 while a job is being transcribed", registry=self.registry)
        if metrics_port is not None:
            start_http_server(metrics_port, registry=self.registry)

    def ensure_groups(self) -> None:
        """Create the consumer group on every job stream (idempotent)."""
        for urgency in keys.ASR_URGENCIES:
            try:
                self.redis.xgroup_create(keys.asr_jobs(urgency), keys.ASR_GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def run(self) -> WorkerStats:
        """Work until :attr:`stopping` is set (SIGTERM/SIGINT), then return what was done."""
        self.ensure_groups()
        log.info("worker %s ready (%s)", self.worker_id, getattr(self.transcriber, "name", "?"))
        while not self.stopping.is_set():
            try:
                self._report()
                job = self._next_job()
                if job is not None:
                    self._handle(*job)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("Redis unavailable (%s); retrying in 1 s", exc)
                time.sleep(1.0)
        log.info("worker %s drained: %s", self.worker_id, self.stats)
        return self.stats

    def _next_job(self) -> tuple[str, bytes, dict[bytes, bytes]] | None:
        if time.monotonic() - self._last_claim > self.claim_idle_ms / 2000:
            self._last_claim = time.monotonic()
            for urgency in keys.ASR_URGENCIES:
                stream = keys.asr_jobs(urgency)
                _, claimed, *_ = self.redis.xautoclaim(stream, keys.ASR_GROUP, self.worker_id,
                                                       min_idle_time=self.claim_idle_ms, start_id="0-0", count=1)
                if claimed and claimed[0][1]:
                    self.stats.reclaimed += 1
                    log.warning("worker %s reclaimed job %s from a silent worker", self.worker_id, claimed[0][0])
                    return stream, claimed[0][0], claimed[0][1]
        for urgency in keys.ASR_URGENCIES:  # the most urgent stream that has work
            stream = keys.asr_jobs(urgency)
            got = self.redis.xreadgroup(keys.ASR_GROUP, self.worker_id, {stream: ">"}, count=1)
            if got and got[0][1]:
                return stream, got[0][1][0][0], got[0][1][0][1]
        got = self.redis.xreadgroup(keys.ASR_GROUP, self.worker_id,
                                    {keys.asr_jobs(u): ">" for u in keys.ASR_URGENCIES}, count=1, block=500)
        for stream, entries in got or []:
            if entries:
                return stream.decode() if isinstance(stream, bytes) else stream, entries[0][0], entries[0][1]
        return None

    def _handle(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        reply = fields.get(b"reply", b"").decode()
        deadline = float(fields.get(b"deadline", b"0") or 0)
        if time.time() > deadline or not reply:
            self._ack(stream, entry_id)
            self.stats.dropped += 1
            self._dropped.inc()
            self.redis.incr(keys.asr_dropped())
            log.info("job %s of call %s dropped: past its deadline", fields.get(b"id", b"?").decode(),
                     fields.get(b"call_sid", b"?").decode())
            return
        job_id = fields.get(b"id", b"").decode()
        self._busy.set(1)
        try:
            audio = from_pcm16(self.cipher.open(fields.get(b"audio", b""), job_id))
            language = fields.get(b"language", b"").decode()[:8]
            segment = _redacted(self.transcriber.transcribe(audio, language),
                                sensitive=fields.get(b"sensitive") == b"1")
        except Exception as exc:  # noqa: BLE001 - a bad job is answered empty; the call goes on on tone
            self.stats.failed += 1
            if isinstance(exc, JobUnreadable):
                log.error("%s (is EMOROUTE_SECRET_KEY the web processes' one?)", exc)
            else:
                log.exception("job %s failed", job_id[:40])
            segment = TranscriptSegment(text="", confidence=0.0, engine=f"error: {type(exc).__name__}")
        finally:
            self._busy.set(0)
        result = {**segment_fields(segment, self.cipher, job_id), "worker": self.worker_id}
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(reply, result, maxlen=RESULTS_MAXLEN, approximate=True)
        pipe.expire(reply, RESULTS_TTL_S)
        if is_cluster(self.redis):
            # the answer and the job lie in different slots: the answer first, so a worker that dies
            # between the two leaves a job that is reclaimed and answered again, never one lost
            pipe.execute()
            pipe = self.redis.pipeline(transaction=True)
        pipe.xack(stream, keys.ASR_GROUP, entry_id)
        pipe.xdel(stream, entry_id)
        pipe.execute()
        self.stats.done += 1
        self._done.inc()

    def _ack(self, stream: str, entry_id: bytes) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(stream, keys.ASR_GROUP, entry_id)
        pipe.xdel(stream, entry_id)
        pipe.execute()

    def _report(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for urgency in keys.ASR_URGENCIES:
            pipe.xlen(keys.asr_jobs(urgency))
            pipe.xpending(keys.asr_jobs(urgency), keys.ASR_GROUP)
        pipe.hset(keys.worker(self.worker_id), mapping={"done": self.stats.done, "dropped": self.stats.dropped,
                                                        "reclaimed": self.stats.reclaimed, "at": time.time()})
        pipe.expire(keys.worker(self.worker_id), 10)
        replies = pipe.execute()
        for i, urgency in enumerate(keys.ASR_URGENCIES):
            self._backlog.labels(urgency).set(replies[2 * i])
            self._pending.labels(urgency).set((replies[2 * i + 1] or {}).get("pending", 0))


def _redacted(segment: TranscriptSegment, *, sensitive: bool) -> TranscriptSegment:
    """Return the transcript with cards, numbers, e-mails and IDs masked, as nothing unredacted is written."""
    sensitive = sensitive or names_secret(segment.text) or any(names_secret(a) for a in segment.alternatives)
    return dataclasses.replace(segment, text=redact(segment.text, sensitive=sensitive), words=(),
                               alternatives=tuple(redact(a, sensitive=sensitive) for a in segment.alternatives),
                               original=redact(segment.original, sensitive=sensitive),
                               english=redact(segment.english, sensitive=sensitive))


def install_drain(worker: InferenceWorker) -> None:
    """Make SIGTERM and SIGINT finish the job in hand, then stop."""
    def drain(signum: int, _frame: object) -> None:
        log.info("worker %s: signal %d, draining", worker.worker_id, signum)
        worker.stopping.set()

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, drain)
