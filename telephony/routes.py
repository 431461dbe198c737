"""Twilio-facing endpoints: the voice webhook, status callbacks, fallback, and the Media Stream socket."""

from __future__ import annotations

import contextlib
import logging

from fastapi import APIRouter, HTTPException, Request, WebSocket, status
from fastapi.responses import Response
from starlette.websockets import WebSocketDisconnect, WebSocketState
from twilio.request_validator import RequestValidator

from emoroute.deps import ServicesDep
from telephony.actions import RouteSpec
from telephony.events import CallEnded, CallStarted
from telephony.media_stream import StreamProtocolError, TwilioStreamParser
from telephony.twiml import enqueue_twiml, greeting_twiml

log = logging.getLogger(__name__)
router = APIRouter(tags=["twilio"])
TERMINAL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}
XML = "application/xml"


def _signed_url(public_url: str, request_path: str, query: str) -> str:
    url = public_url.rstrip("/") + request_path
    return f"{url}?{query}" if query else url


async def _verified_params(request: Request, services: ServicesDep) -> dict[str, str]:
    """Return the webhook's form parameters after checking X-Twilio-Signature (403 if bad)."""
    form = await request.form()
    params = {k: str(v) for k, v in form.multi_items()}
    settings = services.settings
    if not settings.validate_signatures:
        return params
    signature = request.headers.get("X-Twilio-Signature", "")
    url = _signed_url(settings.public_url, request.url.path, request.url.query)
    if not signature or not RequestValidator(settings.twilio_auth_token).validate(url, params, signature):
        services.metrics.signature_failures.labels(request.url.path).inc()
        log.warning("rejected %s: %s X-Twilio-Signature (CallSid=%s, from %s)", request.url.path,
                    "forged" if signature else "missing", params.get("CallSid", "?"),
                    request.client.host if request.client else "?")
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid or missing X-Twilio-Signature")
    return params


@router.post("/twilio/voice")
async def voice(request: Request, services: ServicesDep) -> Response:
    """Answer an incoming call: disclosure, start the Media Stream, ask why, hold."""
    params = await _verified_params(request, services)
    prompts = services.policy.prompts
    stream_params = {"caller": params.get("From", "")}
    twiml = greeting_twiml(
        stream_url=services.settings.stream_url,
        fallback_url=services.settings.public_url.rstrip("/") + "/twilio/fallback",
        disclosure=prompts.disclosure, question=prompts.question, voice=prompts.voice,
        listen_seconds=services.policy.decision.max_listen_seconds + 4,
        parameters=stream_params,
    )
    log.info("call %s from %s answered", params.get("CallSid", "?"), params.get("From", "?"))
    return Response(twiml, media_type=XML)


@router.post("/twilio/fallback")
async def fallback(request: Request, services: ServicesDep) -> Response:
    """Enqueue a call whose routing redirect never came (the never-drop guard)."""
    params = await _verified_params(request, services)
    policy = services.policy
    log.warning("call %s reached the fallback: default queue", params.get("CallSid", "?"))
    spec = RouteSpec(policy.queues[policy.default_queue].twilio_queue, policy.default_priority,
                     {"call_sid": params.get("CallSid", ""), "reason": "fallback"}, policy.prompts.hold,
                     policy.prompts.voice)
    twiml = enqueue_twiml(twilio_queue=spec.twilio_queue, priority=spec.priority, attributes=spec.attributes,
                          workflow_sid=services.settings.twilio_workflow_sid, hold_prompt=spec.hold_prompt,
                          voice=spec.voice)
    return Response(twiml, media_type=XML)


@router.post("/twilio/status", status_code=status.HTTP_204_NO_CONTENT)
async def call_status(request: Request, services: ServicesDep) -> Response:
    """Handle Twilio's call-status callback: a finished call ends its stream state."""
    params = await _verified_params(request, services)
    call_sid, call_status = params.get("CallSid", ""), params.get("CallStatus", "")
    if call_sid and call_status in TERMINAL_STATUSES:
        await services.coordinator.end_call(call_sid, f"status:{call_status}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.websocket("/twilio/stream")
async def media_stream(websocket: WebSocket, services: ServicesDep) -> None:
    """Receive one call's Media Stream; every bad message is logged and counted, never fatal."""
    settings = services.settings
    if settings.validate_signatures:
        signature = websocket.headers.get("x-twilio-signature", "")
        url = _signed_url(settings.stream_url, "", websocket.url.query)
        if not signature or not RequestValidator(settings.twilio_auth_token).validate(url, {}, signature):
            services.metrics.signature_failures.labels("/twilio/stream").inc()
            log.warning("rejected Media Stream connection: %s X-Twilio-Signature",
                        "forged" if signature else "missing")
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
            return
    await websocket.accept()
    parser = TwilioStreamParser(max_message_bytes=settings.max_message_bytes)
    coordinator, metrics = services.coordinator, services.metrics
    reason = "socket_closed"
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            metrics.frames.inc()
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            try:
                event = parser.parse(data)
            except StreamProtocolError as exc:
                metrics.rejected.labels(exc.reason).inc()
                log.warning("call %s: rejected stream message: %s", parser.call_sid or "?", exc)
                continue
            if event is None:
                continue
            if isinstance(event, CallStarted):
                log.info("stream %s for call %s started", event.stream_sid, event.call_sid)
            await coordinator.handle(event)
            if isinstance(event, CallEnded):
                reason = "stop"
                break
    except WebSocketDisconnect:
        pass
    finally:
        if parser.call_sid and reason != "stop":
            await coordinator.handle(CallEnded(parser.call_sid, reason))
        if websocket.client_state == WebSocketState.CONNECTED:
            # The peer may already be gone (Twilio closes right after 'stop').
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await websocket.close()
        log.info("stream of call %s closed (%s): %d frames, %d audio, rejected %s", parser.call_sid or "?",
                 reason, parser.counters.frames, parser.counters.audio_frames, parser.counters.rejected)
