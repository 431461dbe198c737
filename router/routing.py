"""Where a live call goes: its first decision, the redirect, re-routes and raised priorities.

:class:`CallRouting` is the coordinator's (``router.live.CallCoordinator.routing``). The first
decision is sent to Twilio first and stored after, in the call's write order (a slow Redis never
delays a redirect). Later, what the caller says can re-route a call still queued (a decision taken
on tone because the transcript was late says so on the timeline), a language identified after the
call was routed brings its route, and rising anger raises the priority. Redis decides atomically
whether the call is still queued: one with an agent, or ended, is never re-queued or redirected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from router.call_state import CallState
from router.flow import CallFlow
from router.listening import said_so_far
from router.metrics import Metrics
from router.policy import Decision, Policy, decide, reprioritise
from router.store import CallStore
from telephony.actions import CallActions, RouteSpec

log = logging.getLogger(__name__)


class CallRouting:
    """Decides, redirects, re-routes and re-prioritises live calls (the calls' state is the coordinator's)."""

    def __init__(self, *, policy: Policy, store: CallStore, actions: CallActions, metrics: Metrics, flow: CallFlow,
                 persist: Callable[[CallState, Callable[[], Coroutine[Any, Any, Any]]], asyncio.Task[Any]],
                 spawn: Callable[[CallState, Coroutine[Any, Any, None]], asyncio.Task[None]],
                 enter_phase: Callable[[str, str, float | None], None]) -> None:
        """Use the coordinator's ``persist`` (a store write in the call's order), ``spawn`` and ``enter_phase``."""
        self.policy = policy
        self.store = store
        self.actions = actions
        self.metrics = metrics
        self.flow = flow
        self._persist = persist
        self._spawn = spawn
        self.enter_phase = enter_phase

    async def decide(self, state: CallState, closed_at: float | None, trigger: str, at: float | None = None) -> None:
        """Route the call; ``at`` is the call time (s) of what triggered it, default the audio heard so far.

        The redirect goes out first; the decision is stored after it, in the call's write order.
        Without any reading (the model failed or the caller never spoke) the policy's safe default
        queue is what ``decide`` returns.
        """
        if state.decision is not None or state.deciding or state.opted_out:
            return
        state.deciding = True
        decision = decide(state.points, said_so_far(state), self.policy, language=state.language)
        state.decision = decision
        state.language_routed = bool(state.language)
        state.arrival = time.time()
        t = at if at is not None else state.segmenter.seconds
        if state.ended or state.with_agent:
            log.info("call %s: %s before routing; decision stored, no redirect", state.call_sid,
                     "caller hung up" if state.ended else "an agent has the call")
        else:
            self._spawn(state, self.send_route(state, decision, menu=decision.rule == "default"))
            if decision.rule != "default":  # the keypad menu is still part of the greeting
                self.enter_phase(state.call_sid, "identification" if self.policy.identification else "queue", t)
        latency_ms = (time.perf_counter() - closed_at) * 1000 if closed_at is not None else None
        if latency_ms is not None:
            self.metrics.decision_latency.observe(latency_ms / 1000)
        self.metrics.decisions.labels(decision.queue, decision.rule).inc()
        log.info("call %s -> %s priority %d (%s; %s)", state.call_sid, decision.queue, decision.priority,
                 decision.reason, trigger)
        # identification follows a routed decision (not the keypad menu): the wait starts after it
        enqueued = decision.rule == "default" or not self.policy.identification
        applied = await self._persist(state, lambda: self.store.record_decision(
            call_sid=state.call_sid, decision=decision, t=t, arrival=state.arrival, latency_ms=latency_ms,
            enqueued=enqueued))
        if applied is False:
            log.info("call %s: decision not queued (the call ended or an agent has it)", state.call_sid)

    async def send_route(self, state: CallState, decision: Decision, *, menu: bool = False,
                          identify: bool = True, opting_out: bool = False) -> None:
        """Redirect the call: its first route (identification, then the queue), a re-route, or the keypad menu."""
        last = state.points[-1] if state.points else None
        emotion = max(last.probs, key=lambda k: last.probs[k]) if last and not opting_out else "unknown"
        lead = self.policy.opt_out.confirmation if opting_out else ""
        # the language check is asked once a call: a later re-route goes straight to its queue
        checking = not (menu or opting_out or state.language_checked) and self.flow.checks_language(state.language)
        state.language_checked = state.language_checked or checking
        spec: RouteSpec = self.flow.route_spec(state.call_sid, decision, emotion, menu=menu, identify=identify,
                                               lead=lead, stop_stream=opting_out, language=state.language,
                                               check_language=checking, runners_up=state.runners_up)
        try:
            await self.actions.route_call(state.call_sid, spec)
        except Exception:  # noqa: BLE001 - the TwiML <Redirect> fallback still enqueues the caller
            self.metrics.errors.labels("twilio_rest").inc()
            log.exception("call %s: Twilio redirect failed; the call falls back to the default queue",
                          state.call_sid)

    async def _requeue(self, state: CallState, decision: Decision, kind: str) -> bool:
        """Store a re-route or new priority if the call is still queued; return whether it was applied.

        Redis decides atomically (router.store.CALL_SIDE_LUA and PLACE_CALL_LUA): a call with an agent, or ended, is
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

    async def after_decision(self, state: CallState, *, late: bool = False, reheard: bool = False) -> None:
        """Re-route when the caller later says something that routes elsewhere; else maybe raise priority.

        ``late``: the transcript of the utterance the call was decided on arrived after the decision
        (taken on tone alone); a re-route it causes says so on the timeline. ``reheard``: the
        caller's words were heard again in English (they keyed it): the call goes where they lead
        now, whatever rule decided it before (the words it was decided on were a mistranslation).
        """
        assert state.decision is not None
        if state.with_agent or state.ended:
            return
        fresh = decide(state.points, said_so_far(state), self.policy, language=state.language)
        if late and not state.decision.rule.startswith("text"):
            fresh = Decision(fresh.queue, fresh.priority, f"{fresh.reason} (late transcript; the call was first "
                             f"routed on tone: {state.decision.reason})", fresh.rule)
        # a language identified after the call was routed: its route (queue, skill, hold message) applies now
        language_news = (not state.language_routed and self.policy.languages.route(state.language) is not None)
        if reheard:
            fresh = Decision(fresh.queue, fresh.priority, f"{fresh.reason} (heard again in English)", fresh.rule)
        if (fresh.queue != state.decision.queue and (fresh.rule.startswith("text") or reheard)) or language_news:
            state.language_routed = bool(state.language)
            if not await self._requeue(state, fresh, "reroute"):
                return
            state.decision = fresh
            await self.send_route(state, fresh, identify=False)
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
