"""The application factory: ``create_app(settings)`` builds the services and mounts the web layer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.middleware.base import RequestResponseEndpoint
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from audio_models.emotion_types import EmotionModel
from audio_models.transcribe import Transcriber
from emoroute.services import Services, start_services, stop_services
from emoroute.settings import Settings
from emoroute.web.access_log import install as install_access_log_scrub
from emoroute.web.api import router as api_router
from emoroute.web.dashboards import router as dashboards_router
from emoroute.web.twilio import router as telephony_router
from telephony.actions import CallActions

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


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    services = await start_services(app.state.settings, emotion_model=app.state.emotion_model,
                                    actions=app.state.actions, transcriber_override=app.state.transcriber)
    app.state.services = services
    try:
        yield
    finally:
        app.state.stopping.set()
        await stop_services(services)


def create_app(
    settings: Settings | None = None,
    *,
    emotion_model: EmotionModel | None = None,
    actions: CallActions | None = None,
    transcriber: Transcriber | None = None,
) -> FastAPI:
    """Return the EmoRoute FastAPI app (tests pass their own settings, model or actions)."""
    install_access_log_scrub()
    settings = settings or Settings()
    # the interactive API docs load Swagger UI from a CDN and describe every route to anyone:
    # served in development only
    docs = settings.environment == "development"
    app = FastAPI(title="EmoRoute", version="0.1.0", lifespan=_lifespan,
                  description="Emotion-aware call routing for contact centres.",
                  docs_url="/docs" if docs else None, redoc_url=None,
                  openapi_url="/openapi.json" if docs else None)
    app.state.settings = settings
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
        log.warning("Redis unavailable for %s: %s", request.url.path, exc)  # its address stays in the log
        return JSONResponse({"detail": "Redis unavailable; calls are still routed"}, status_code=503)

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> dict[str, Any]:
        services: Services = request.app.state.services
        try:
            redis_ok = bool(await services.redis.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            redis_ok = False
        return {"status": "ok" if redis_ok else "degraded", "redis": redis_ok,
                "model": getattr(services.model, "name", "?"), "outbox": len(services.store.outbox),
                "live_calls": len(services.coordinator.calls), "process": services.process_id}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        """Ready for new calls: started, not draining, Redis answering or the outbox with room; else 503.

        A Redis outage alone does not make a process unready: calls are routed without it and their
        writes wait in the outbox (a dead Redis must never stall routing), so taking every process
        out of the load balancer would be the outage. A full outbox would drop writes: then it is.
        """
        services: Services | None = getattr(request.app.state, "services", None)
        draining = bool(getattr(request.app.state, "draining", False))
        redis_ok = False
        if services is not None:
            try:
                redis_ok = bool(await asyncio.wait_for(services.redis.ping(), services.settings.redis_timeout_s))
            except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError):
                redis_ok = False
        room = services is not None and len(services.store.outbox) < services.store.outbox.max_items
        ready = services is not None and not draining and (redis_ok or room)
        return JSONResponse({"ready": ready, "started": services is not None, "redis": redis_ok,
                             "draining": draining, "live_calls": len(services.coordinator.calls) if services else 0},
                            status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        services: Services = request.app.state.services
        services.metrics.outbox.set(len(services.store.outbox))
        if services.remote_asr is not None:
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
                for urgency, figures in (await services.remote_asr.backlog()).items():
                    services.metrics.asr_stream_length.labels(urgency).set(figures["length"])
                    services.metrics.asr_stream_pending.labels(urgency).set(figures["pending"])
        return PlainTextResponse(generate_latest(services.metrics.registry).decode(),
                                 media_type="text/plain; version=0.0.4")

    return app
