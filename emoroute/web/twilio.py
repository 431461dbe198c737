"""Twilio-facing endpoints: the voice webhook, status and TaskRouter callbacks, fallback, and the Media Stream.

Nothing a Twilio request says is trusted before its signature is checked, and an unsigned
request is refused before its body is even read; bodies are size-capped while they are read.
A Media Stream is accepted only for a call a signed voice webhook announced (the per-call
credential in telephony.credentials, and a one-stream-per-call record in Redis), and every
stream is bounded: a per-process cap, an idle timeout, a maximum duration and a message rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, WebSocket, status
from fastapi.responses import Response
from redis.exceptions import RedisError
from starlette.websockets import WebSocketDisconnect, WebSocketState
from twilio.request_validator import RequestValidator

from emoroute.log_safety import printable
from emoroute.web.deps import ServicesDep
from router.live import trajectory_of
from router.policy import LANGUAGE_CODE, Decision, decide
from router.redact import mask_phone
from telephony.credentials import check_stream_start, is_account_sid, is_call_sid, stream_parameters
from telephony.events import CallEnded, CallStarted
from telephony.media_stream import StreamProtocolError, TwilioStreamParser
from telephony.twiml import goodbye_twiml, greeting_twiml, with_stream_stopped

log = logging.getLogger(__name__)
router = APIRouter(tags=["twilio"])
TERMINAL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}
XML = "application/xml"
FORM = "application/x-www-form-urlencoded"
ANNOUNCE_WAIT_S = 0.5  # the voice webhook never waits longer than this for Redis
FLOOD_CLOSE_AFTER_S = 2.0  # a stream over its message rate for this long is closed
# a second counts as flooded when at least this share of its messages was dropped: judged over whole
# seconds, so the bucket's refills (a message let through every 1/rate s) never reset the judgement
FLOOD_DROP_SHARE = 0.5
_ACTING: set[asyncio.Future[None]] = set()  # call-flow requests still being acted on by the coordinator


def _signed_url(public_url: str, request_path: str, query: str) -> str:
    url = public_url.rstrip("/") + request_path
    return f"{url}?{query}" if query else url


async def _read_capped(request: Request, limit: int) -> bytes:
    """Return the request body, refusing (413) one over ``limit`` bytes before reading past it."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"webhook body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"webhook body over {limit} bytes")
    return bytes(body)


async def _verified_params(request: Request, services: ServicesDep) -> dict[str, str]:
    """Return the webhook's form parameters after checking X-Twilio-Signature (403 if bad).

    An unsigned request is refused before its body is read; a body over the limit gets 413.
    """
    settings = services.settings
    signature = request.headers.get("X-Twilio-Signature", "")
    client = request.client.host if request.client else "?"
    if settings.validate_signatures and not signature:
        services.metrics.signature_failures.labels(request.url.path).inc()
        services.refusals.warning(log, "rejected %s from %s: missing X-Twilio-Signature", request.url.path, client)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid or missing X-Twilio-Signature")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"Twilio webhooks are {FORM}")
    body = await _read_capped(request, settings.max_webhook_bytes)
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "webhook body is not UTF-8") from exc
    if not settings.validate_signatures:
        return params
    url = _signed_url(settings.public_url, request.url.path, request.url.query)
    if not RequestValidator(settings.twilio_auth_token).validate(url, params, signature):
        services.metrics.signature_failures.labels(request.url.path).inc()
        services.refusals.warning(log, "rejected %s: forged X-Twilio-Signature (CallSid=%s, from %s)",
                                  request.url.path, printable(params.get("CallSid", "?"), 40), client)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid or missing X-Twilio-Signature")
    return params


def _call_ids(params: dict[str, str], services: ServicesDep) -> str:
    """Return the webhook's CallSid once it and the AccountSid have Twilio's shape and our account (else 400)."""
    call_sid, account_sid = params.get("CallSid", ""), params.get("AccountSid", "")
    if not is_call_sid(call_sid) or not is_account_sid(account_sid):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "CallSid/AccountSid missing or not in Twilio's format")
    if account_sid != services.settings.twilio_account_sid:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the call belongs to another Twilio account")
    return call_sid


@router.post("/twilio/voice")
async def voice(request: Request, services: ServicesDep) -> Response:
    """Answer an incoming call: disclosure, start the Media Stream with its credential, ask why, hold."""
    params = await _verified_params(request, services)
    call_sid = _call_ids(params, services)
    settings, prompts = services.settings, services.policy.prompts
    announced: bool | None = False
    with contextlib.suppress(TimeoutError):
        # the local ledger covers this process if Redis is slow; other processes then refuse the
        # stream and the caller reaches the fallback queue through the <Redirect>
        announced = await asyncio.wait_for(
            services.store.announce_call(call_sid=call_sid, ttl_s=settings.stream_token_ttl_s), ANNOUNCE_WAIT_S)
    if announced is None:
        # an erased call's webhook again: a replay (Twilio asks once per call); nothing is recreated
        log.warning("call %s: voice webhook for an erased call refused", call_sid)
        return Response(goodbye_twiml(text="", voice=prompts.voice), media_type=XML)
    services.ledger.announce(call_sid)
    stream_params = {"caller": params.get("From", ""),
                     **stream_parameters(settings.secret_key, account_sid=settings.twilio_account_sid,
                                         call_sid=call_sid)}
    twiml = greeting_twiml(
        stream_url=settings.stream_url,
        urls=services.coordinator.flow.urls,
        disclosure=prompts.disclosure, question=prompts.question, voice=prompts.voice,
        listen_seconds=services.policy.decision.max_listen_seconds + 4,
        parameters=stream_params,
    )
    log.info("call %s from %s answered", call_sid, mask_phone(params.get("From", "")))
    return Response(twiml, media_type=XML)


@router.post("/twilio/fallback")
async def fallback(request: Request, services: ServicesDep) -> Response:
    """Offer the keypad menu to a call whose routing redirect never came (the never-drop guard).

    No key, and the menu's own ``<Enqueue>`` puts the caller in the default queue.
    """
    params = await _verified_params(request, services)
    call_sid = _call_ids(params, services)
    log.warning("call %s reached the fallback: keypad menu", call_sid)
    return Response(services.coordinator.flow.keypad_menu(call_sid), media_type=XML)


async def _to_holder(services: ServicesDep, call_sid: str, request: dict[str, object]) -> bool:
    """Hand ``request`` to the coordinator holding the call (here or another process); False if none does."""
    # a stream admitted here registers its call a moment later (its VAD loads first): wait for it
    for _ in range(40):
        if call_sid in services.coordinator.calls or call_sid not in services.ledger.streaming:
            break
        await asyncio.sleep(0.025)
    if call_sid in services.coordinator.calls:
        # the coordinator's stored writes may wait on a slow Redis; the caller's next prompt does not
        acting = asyncio.ensure_future(services.coordinator.control({**request, "call_sid": call_sid}))
        _ACTING.add(acting)  # held until done (the event loop keeps only a weak reference)
        acting.add_done_callback(_ACTING.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(acting), max(0.05, _DEADLINE.get() - time.monotonic()))
        return True
    if services.registry is None:
        return False
    where = await _bounded(services.registry.forward(call_sid, dict(request)), "unknown")
    return bool(where == "sent")


_DEADLINE: ContextVar[float] = ContextVar("call_flow_deadline", default=0.0)


def _budget() -> None:
    """Start this webhook's Redis budget: all its reads together wait at most ANNOUNCE_WAIT_S."""
    _DEADLINE.set(time.monotonic() + ANNOUNCE_WAIT_S)


async def _bounded(coro: Coroutine[Any, Any, Any], default: object = None) -> Any:
    """Await a store read within the webhook's budget: a slow Redis never holds a caller's next prompt."""
    remaining = _DEADLINE.get() - time.monotonic()
    if remaining <= 0:
        coro.close()
        return default
    try:
        return await asyncio.wait_for(coro, remaining)
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("store unavailable in a call-flow webhook (%s); going on without it", type(exc).__name__)
        _DEADLINE.set(0.0)  # the rest of this request does not ask again
        return default


def _later(*writes: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Run store writes in order off the caller's path (the store's outbox keeps them through an outage)."""
    async def run() -> None:
        for write in writes:
            try:
                await write()
            except (RedisError, OSError) as exc:  # the outbox normally absorbs these; never lose the webhook
                log.warning("call-flow write failed: %s", exc)

    task = asyncio.ensure_future(run())
    _ACTING.add(task)
    task.add_done_callback(_ACTING.discard)


@router.post("/twilio/keypad")
async def keypad(request: Request, services: ServicesDep, stage: str = "listen") -> Response:
    """A key pressed during the question (``stage=listen``) or the keypad menu (``stage=menu``).

    The opt-out key stops the analysis (and the stream) and offers the menu; a menu key routes the
    call by it (the tone heard so far may only raise its priority); no key at the menu queues the
    call in the default queue; any other key hears the menu again.
    """
    params = await _verified_params(request, services)
    call_sid = _call_ids(params, services)
    _budget()
    stage = "menu" if stage == "menu" else "listen"
    policy, flow, digits = services.policy, services.coordinator.flow, params.get("Digits", "")[:8]
    if digits == policy.opt_out.key:
        services.metrics.keys.labels(stage, "opt_out").inc()
        await _opt_out(services, call_sid, "key")
        return Response(flow.opted_out(call_sid), media_type=XML)
    if digits in policy.keypad.menu:
        services.metrics.keys.labels(stage, "menu").inc()
        local = services.coordinator.points_of(call_sid)
        call = await _bounded(services.store.get_call(call_sid)) or {}
        opted_out = isinstance(call, dict) and call.get("opted_out") == "1"
        if local is None and not opted_out:
            entries = await _bounded(services.store.get_timeline(call_sid, count=50, latest=True), [])
            local = trajectory_of(entries if isinstance(entries, list) else [])
        decision = decide([] if opted_out else (local or []), None, policy, digits)
        request_: dict[str, object] = {"action": "keyed", "key": digits, "decision": decision.__dict__}
        if not await _to_holder(services, call_sid, request_):
            await _store_keyed(services, call_sid, digits, decision)
        return Response(flow.after_decision(call_sid, decision, {"reason": decision.reason}), media_type=XML)
    if stage == "menu" and not digits:
        services.metrics.keys.labels(stage, "no_key").inc()
        decision = Decision(policy.default_queue, policy.default_priority, "no key pressed at the menu", "default")
        if not await _to_holder(services, call_sid, {"action": "phase", "phase": "queue"}):
            _later(lambda: services.store.phase_changed(call_sid=call_sid, phase="queue", t=None))
        return Response(flow.enqueue(call_sid, decision.queue, decision.priority, {"reason": decision.reason}),
                        media_type=XML)
    services.metrics.keys.labels(stage, "not_on_menu").inc()
    return Response(flow.keypad_menu(call_sid, lead="That key is not on the menu."), media_type=XML)


async def _opt_out(services: ServicesDep, call_sid: str, via: str) -> None:
    """Stop the analysis and delete what it stored: by the coordinator holding the call, else here."""
    if not await _to_holder(services, call_sid, {"action": "opt_out", "via": via}):
        services.metrics.opt_outs.inc()
        _later(lambda: services.store.opt_out(call_sid=call_sid, t=0.0, via=via))
        if services.scrubber is not None:
            await services.scrubber.opted_out(call_sid)
    log.info("call %s: caller opted out of analysis (%s)", call_sid, via)


async def _store_keyed(services: ServicesDep, call_sid: str, key: str, decision: Decision) -> None:
    """Store a keyed route when no coordinator holds the call (opted out, or its process is gone)."""
    phase = "identification" if services.policy.identification else "queue"
    arrival = time.time()
    _later(lambda: services.store.mark(call_sid=call_sid, fields={"keypad": key}, entry={"type": "key", "key": key}),
           lambda: services.store.record_decision(call_sid=call_sid, decision=decision, t=0.0, arrival=arrival,
                                                  latency_ms=None, kind="keypad",
                                                  enqueued=not services.policy.identification),
           lambda: services.store.phase_changed(call_sid=call_sid, phase=phase, t=None),
           lambda: services.store.adopt_call(call_sid=call_sid, at=arrival))


@router.post("/twilio/identify")
async def identify(request: Request, services: ServicesDep, step: int = 0, queue: str = "",
                   priority: int = 0, language: str = "") -> Response:
    """One identification step answered (or not): the next step, or the queue the call was routed to.

    What the caller keyed or said is never stored, only whether the step got an answer.
    """
    params = await _verified_params(request, services)
    call_sid = _call_ids(params, services)
    _budget()
    policy, flow = services.policy, services.coordinator.flow
    if queue not in policy.queues or not 1 <= priority <= 10 or not 0 <= step < max(1, len(policy.identification)):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "identify: unknown step, queue or priority")
    if language and not re.fullmatch(LANGUAGE_CODE, language):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "identify: language must be a language code (es, pl, ...)")
    digits = params.get("Digits", "")
    opting_out = policy.opt_out.key in digits  # "press star at any time": the caller refuses the analysis here
    if opting_out:
        await _opt_out(services, call_sid, "key")
        digits = digits.replace(policy.opt_out.key, "")
    answered = bool(digits.strip("#*") or params.get("SpeechResult", "").strip())
    name = policy.identification[step].name if policy.identification else "identification"
    _later(lambda: services.store.mark(call_sid=call_sid, fields={f"identified_{name}": "1" if answered else "0"},
                                       entry={"type": "identified", "step": name, "answered": int(answered)}))
    nxt = flow.identify(step + 1, queue, priority, language)
    if nxt is None:
        if not await _to_holder(services, call_sid, {"action": "phase", "phase": "queue"}):
            _later(lambda: services.store.phase_changed(call_sid=call_sid, phase="queue", t=None))
        nxt = flow.enqueue(call_sid, queue, priority, flow.language_attributes(language), language)
    if opting_out:
        nxt = with_stream_stopped(nxt, policy.opt_out.confirmation, policy.prompts.voice)
    return Response(nxt, media_type=XML)


@router.post("/twilio/language")
async def language_check(request: Request, services: ServicesDep, queue: str = "", priority: int = 0,
                         language: str = "", then: str = "queue") -> Response:
    """The language check answered: a language's key (the call goes on in it), or none or another (it stays).

    The English key: the call goes on in English; another served language's key: in that one.
    """
    params = await _verified_params(request, services)
    call_sid = _call_ids(params, services)
    _budget()
    policy, flow = services.policy, services.coordinator.flow
    if queue not in policy.queues or not 1 <= priority <= 10 or then not in ("identify", "queue"):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "language: unknown queue, priority or next step")
    if not re.fullmatch(LANGUAGE_CODE, language) or language == "en":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "language: must be a language code other than en (es, ...)")
    digits = params.get("Digits", "")
    opting_out = policy.opt_out.key in digits
    if opting_out:
        await _opt_out(services, call_sid, "key")
        digits = digits.replace(policy.opt_out.key, "")
    rules = policy.languages
    chosen = "en" if digits == rules.check.english_key else rules.keyed(digits)
    outcome = "kept" if chosen in (None, language) else "english" if chosen == "en" else "switched"
    # a key no language has: other_key (the caller's own language's key is "kept", like no key)
    services.metrics.keys.labels("language", "other_key" if digits and chosen is None else outcome).inc()
    _later(lambda: services.store.mark(
        call_sid=call_sid, fields={"language_check": chosen if outcome != "kept" else "kept",
                                   "language_checked": language},
        entry={"type": "language_check", "language": language, "english": int(outcome == "english"),
               **({"keyed": chosen} if outcome == "switched" else {})}))
    if outcome != "kept":
        assert chosen is not None
        queue = policy.language_queue(queue, language, chosen)
        if not await _to_holder(services, call_sid, {"action": "speaks_language", "language": chosen}):
            _later(lambda: services.store.set_language(call_sid=call_sid, language=chosen, probability=1.0,
                                                       t=0.0, route="keyed"))
        language = "" if chosen == "en" else chosen
    nxt = flow.after_language_check(call_sid, queue, priority, language, then)
    if opting_out:
        nxt = with_stream_stopped(nxt, policy.opt_out.confirmation, policy.prompts.voice)
    return Response(nxt, media_type=XML)


@router.post("/twilio/queue-result")
async def queue_result(request: Request, services: ServicesDep) -> Response:
    """The ``<Enqueue>`` action: the call left the queue.

    After a bridged call (the agent leg ended) the survey starts, if the policy asks for one;
    otherwise the call ends.
    """
    params = await _verified_params(request, services)
    call_sid = _call_ids(params, services)
    _budget()
    result = params.get("QueueResult", "")[:32]
    policy = services.policy
    if result != "bridged":
        log.info("call %s left the queue: %s", call_sid, result or "?")
        return Response(goodbye_twiml(text="", voice=policy.prompts.voice), media_type=XML)
    ended_at = str(time.time())
    _later(lambda: services.store.mark(call_sid=call_sid, fields={"agent_leg_ended_at": ended_at},
                                       entry={"type": "agent_leg_ended"}))
    if not policy.survey.enabled:
        return Response(goodbye_twiml(text="", voice=policy.prompts.voice), media_type=XML)
    if not await _to_holder(services, call_sid, {"action": "phase", "phase": "survey"}):
        _later(lambda: services.store.phase_changed(call_sid=call_sid, phase="survey", t=None))
    services.metrics.surveys.labels("asked").inc()
    return Response(services.coordinator.flow.survey(), media_type=XML)


@router.post("/twilio/survey")
async def survey(request: Request, services: ServicesDep, attempt: int = 0) -> Response:
    """The survey's key: 1-5 is stored with the call; another key is asked again once."""
    params = await _verified_params(request, services)
    call_sid = _call_ids(params, services)
    policy, digits = services.policy, params.get("Digits", "")[:8]
    if digits in ("1", "2", "3", "4", "5"):
        services.metrics.surveys.labels("answered").inc()
        answered_at = str(time.time())
        _later(lambda: services.store.mark(call_sid=call_sid, fields={"csat": digits, "csat_at": answered_at},
                                           entry={"type": "survey", "score": int(digits)}),
               lambda: services.store.adopt_call(call_sid=call_sid, at=float(answered_at)),
               lambda: services.store.hand_off(call_sid))  # the history store gets the score too
        log.info("call %s: survey score %s", call_sid, digits)
        return Response(goodbye_twiml(text=policy.survey.thanks, voice=policy.prompts.voice), media_type=XML)
    if attempt < 1:
        services.metrics.surveys.labels("retry").inc()
        return Response(services.coordinator.flow.survey(attempt + 1), media_type=XML)
    services.metrics.surveys.labels("unanswered").inc()
    return Response(goodbye_twiml(text=policy.survey.thanks, voice=policy.prompts.voice), media_type=XML)


@router.post("/twilio/status", status_code=status.HTTP_204_NO_CONTENT)
async def call_status(request: Request, services: ServicesDep) -> Response:
    """Handle Twilio's call-status callback: a finished call ends its stream state."""
    params = await _verified_params(request, services)
    call_sid, call_status = _call_ids(params, services), params.get("CallStatus", "")
    if call_status in TERMINAL_STATUSES:
        await end_anywhere(services, call_sid, f"status:{call_status}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def end_anywhere(services: ServicesDep, call_sid: str, reason: str) -> None:
    """End a call whichever web process holds its stream (this one, another, or a dead one)."""
    if call_sid in services.coordinator.calls:
        await services.coordinator.end_call(call_sid, reason)
        return
    assert services.registry is not None
    where = await services.registry.forward(call_sid, {"action": "end", "reason": reason})
    if where == "local":  # nobody holds it (its stream stopped early: an opt-out); end it unless ended
        call = await services.store.get_call(call_sid)
        if call and call.get("status") != "ended":
            where = "orphan"
    if where == "orphan":
        # its process is gone: mark the stored call ended here
        owner = await services.store.owner_of(call_sid)
        await services.store.call_ended(call_sid=call_sid, t=0.0, reason=reason, owner=owner)


@router.post("/twilio/taskrouter", status_code=status.HTTP_204_NO_CONTENT)
async def taskrouter_event(request: Request, services: ServicesDep) -> Response:
    """Handle TaskRouter's event callback: a task assigned to a worker means an agent has the call."""
    params = await _verified_params(request, services)
    assigned = params.get("EventType") == "reservation.accepted" or (
        params.get("EventType") == "task.updated" and params.get("TaskAssignmentStatus") == "assigned")
    if not assigned:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    try:
        attributes = json.loads(params.get("TaskAttributes", "{}"))
    except json.JSONDecodeError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "TaskAttributes is not JSON") from exc
    call_sid = str(attributes.get("call_sid", "")) if isinstance(attributes, dict) else ""
    if not is_call_sid(call_sid):
        return Response(status_code=status.HTTP_204_NO_CONTENT)  # a task EmoRoute did not create
    agent = printable(params.get("WorkerName") or params.get("WorkerSid") or "taskrouter", 64)
    services.coordinator.mark_with_agent(call_sid)
    await services.store.mark_with_agent(call_sid=call_sid, agent_id=agent, source="taskrouter")
    if services.registry is not None:
        await services.registry.forward(call_sid, {"action": "with_agent"})
    log.info("call %s assigned to %s by TaskRouter", call_sid, agent)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _refuse(websocket: WebSocket, services: ServicesDep, reason: str, detail: str, *,
                  code: int = status.WS_1008_POLICY_VIOLATION) -> None:
    services.metrics.streams_refused.labels(reason).inc()
    services.refusals.warning(log, "refused Media Stream (%s): %s", reason, detail)
    # before the handshake is accepted, closing answers it with HTTP 403
    if websocket.client_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.close(code=code, reason=reason)


async def _admit(event: CallStarted, services: ServicesDep) -> tuple[str, str] | None:
    """Return (reason, detail) when the stream's ``start`` must be refused, None to accept it."""
    settings = services.settings
    check = check_stream_start(settings.secret_key, expected_account_sid=settings.twilio_account_sid,
                               account_sid=event.account_sid, call_sid=event.call_sid,
                               stream_sid=event.stream_sid, parameters=event.custom_parameters,
                               ttl_s=settings.stream_token_ttl_s)
    if not check.ok:
        return check.reason, f"call {event.call_sid[:40]!r}: stream credential refused"
    if event.call_sid in services.ledger.streaming or event.call_sid in services.coordinator.calls:
        return "duplicate_stream", f"call {event.call_sid} already has a stream here"
    if not services.store.redis_up and services.ledger.was_announced(event.call_sid):
        # Redis is known to be away (writes are queuing in the outbox): a call this process announced
        # starts at once rather than after another Redis timeout
        log.warning("call %s: Redis unavailable; admitted on this process's own announcement", event.call_sid)
        return None
    try:
        claimed = await asyncio.wait_for(services.store.claim_stream(call_sid=event.call_sid,
                                                                     stream_sid=event.stream_sid),
                                         settings.redis_timeout_s)
    except (RedisError, OSError, TimeoutError) as exc:
        # Redis cannot say: only a call this process announced itself gets in
        if services.ledger.was_announced(event.call_sid):
            log.warning("call %s: Redis unavailable (%s); admitted on this process's own announcement",
                        event.call_sid, exc)
            return None
        return "unverifiable", f"call {event.call_sid}: Redis unavailable and not announced here"
    if claimed == 0:
        if services.ledger.was_announced(event.call_sid):
            # announced here while Redis could not store it, or stored on a primary that was lost
            # in a fail-over before it replicated: this process's own record of the signed webhook
            log.warning("call %s: announcement missing in Redis; admitted on this process's own", event.call_sid)
            return None
        return "not_announced", f"call {event.call_sid}: no signed voice webhook announced it"
    if claimed == -2:
        return "opted_out", f"call {event.call_sid}: the caller refused the analysis"
    if claimed == -3:
        return "erased", f"call {event.call_sid}: the call was erased"
    if claimed < 0:
        return "duplicate_stream", f"call {event.call_sid} already has a stream"
    return None


class _RateLimit:
    """A token bucket of messages per second, and how many whole seconds in a row were flooded.

    A second is flooded when at least FLOOD_DROP_SHARE of its messages were dropped. (Judging by
    "the bucket was empty" alone never fires: a flooder is let through one message at every refill.)
    """

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.at = rate, 2 * rate, time.monotonic()
        self.window_start, self.sent, self.dropped = self.at, 0, 0
        self.flooded_seconds = 0

    def allow(self) -> bool:
        now = time.monotonic()
        if now - self.window_start >= 1.0:
            flooded = self.sent and self.dropped / self.sent >= FLOOD_DROP_SHARE
            self.flooded_seconds = self.flooded_seconds + 1 if flooded else 0
            self.window_start, self.sent, self.dropped = now, 0, 0
        self.sent += 1
        self.tokens = min(2 * self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.dropped += 1
        return False

    @property
    def flooding(self) -> bool:
        """Whether the stream has been flooding for FLOOD_CLOSE_AFTER_S whole seconds."""
        return self.flooded_seconds >= FLOOD_CLOSE_AFTER_S


@router.websocket("/twilio/stream")
async def media_stream(websocket: WebSocket, services: ServicesDep) -> None:
    """Receive one call's Media Stream; every bad message is logged and counted, never fatal."""
    settings = services.settings
    if settings.validate_signatures:
        signature = websocket.headers.get("x-twilio-signature", "")
        url = _signed_url(settings.stream_url, "", websocket.url.query)
        if not signature or not RequestValidator(settings.twilio_auth_token).validate(url, {}, signature):
            services.metrics.signature_failures.labels("/twilio/stream").inc()
            await _refuse(websocket, services, "bad_signature",
                          f"{'forged' if signature else 'missing'} X-Twilio-Signature")
            return
    if services.streams_open >= settings.max_streams:
        await websocket.accept()
        await _refuse(websocket, services, "capacity", f"{settings.max_streams} streams already open here",
                      code=status.WS_1013_TRY_AGAIN_LATER)
        return
    client = websocket.client.host if websocket.client else "?"
    if services.pending_streams[client] >= settings.max_pending_streams_per_client:
        await websocket.accept()
        await _refuse(websocket, services, "pending_cap",
                      f"{settings.max_pending_streams_per_client} sockets from one address waiting for `start`",
                      code=status.WS_1013_TRY_AGAIN_LATER)
        return
    services.streams_open += 1
    pending = _PendingSlot(services.pending_streams, client)
    try:
        await websocket.accept()
        await _serve_stream(websocket, services, pending)
    finally:
        pending.release()
        services.streams_open -= 1


class _PendingSlot:
    """One socket's place in its address's count of sockets that have not yet sent a valid `start`."""

    def __init__(self, counts: Counter[str], client: str) -> None:
        self.counts, self.client, self.held = counts, client, True
        counts[client] += 1

    def release(self) -> None:
        if self.held:
            self.held = False
            self.counts[self.client] -= 1
            if self.counts[self.client] <= 0:
                del self.counts[self.client]


async def _serve_stream(websocket: WebSocket, services: ServicesDep, pending: _PendingSlot) -> None:
    settings = services.settings
    parser = TwilioStreamParser(max_message_bytes=settings.max_message_bytes,
                                max_payload_bytes=settings.max_media_payload_bytes)
    coordinator, metrics = services.coordinator, services.metrics
    limit = _RateLimit(settings.max_frames_per_second)
    opened = time.monotonic()
    deadline = opened + settings.max_call_seconds
    start_deadline = opened + settings.stream_start_seconds
    reason, admitted, rejected_logged = "socket_closed", False, 0
    try:
        while True:
            # until a valid `start`, a socket holds a stream slot on credit: it gets stream_start_seconds
            wait = settings.stream_idle_seconds if admitted else start_deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(websocket.receive(), max(wait, 0.0))
            except TimeoutError:
                reason = "idle_timeout" if admitted else "no_start"
                break
            if message["type"] == "websocket.disconnect":
                break
            metrics.frames.inc()
            if time.monotonic() > deadline:
                reason = "max_duration"
                break
            if not admitted and time.monotonic() > start_deadline:
                reason = "no_start"
                break
            if not limit.allow():
                metrics.rejected.labels("rate_limited").inc()
                parser.counters.reject("rate_limited")
                if limit.flooding:
                    reason = "flooding"
                    break
                continue
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            try:
                event = parser.parse(data)
            except StreamProtocolError as exc:
                metrics.rejected.labels(exc.reason).inc()
                rejected_logged += 1
                if rejected_logged <= 20 or rejected_logged % 1000 == 0:
                    log.warning("call %s: rejected stream message (%d so far): %.200s", parser.call_sid or "?",
                                rejected_logged, str(exc))
                continue
            if event is None:
                continue
            if isinstance(event, CallStarted):
                refusal = await _admit(event, services)
                if refusal is not None:
                    await _refuse(websocket, services, *refusal)
                    return
                admitted = True
                pending.release()
                services.ledger.streaming.add(event.call_sid)
                log.info("stream %s for call %s started", event.stream_sid, event.call_sid)
            await coordinator.handle(event)
            if isinstance(event, CallEnded):
                reason = "stop"
                break
    except WebSocketDisconnect:
        pass
    finally:
        if reason in ("idle_timeout", "max_duration", "flooding", "no_start"):
            metrics.streams_closed.labels(reason).inc()
            log.warning("call %s: stream closed (%s)", parser.call_sid or "?", reason)
        if parser.call_sid and admitted and reason != "stop":
            await coordinator.handle(CallEnded(parser.call_sid, reason))
        if admitted and parser.call_sid:
            services.ledger.streaming.discard(parser.call_sid)
        if websocket.client_state == WebSocketState.CONNECTED:
            # The peer may already be gone (Twilio closes right after 'stop').
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await websocket.close(code=status.WS_1008_POLICY_VIOLATION if reason in ("flooding", "no_start")
                                      else 1000,
                                      reason=reason if reason != "stop" else "")
        if admitted:
            log.info("stream of call %s closed (%s): %d frames, %d audio, rejected %s", parser.call_sid,
                     reason, parser.counters.frames, parser.counters.audio_frames, parser.counters.rejected)
