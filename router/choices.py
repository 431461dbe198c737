"""What a live caller chose besides speaking: a menu key, refusing the analysis, their language.

:class:`CallerChoices` is the coordinator's (``router.live.CallCoordinator.choices``); the keypad,
opt-out and language-check webhooks reach it through the coordinator's ``control`` (here, or from
another web process through router.cluster), and a refusal said in words through the listener.
A menu key routes the call at once (Twilio already has the keypad webhook's answer). An opt-out
stops scoring and deletes what was stored, in the call's write order. A caller who keys at the
language check that they speak English is heard as English from then on, and what they said so
far is heard again in English and may re-route the call; one who keys another served language is
heard in it from their next utterance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from router.call_state import CallState
from router.listening import CallListener, said_so_far
from router.metrics import Metrics
from router.phases import says_any
from router.policy import Decision, Policy, TextSignals
from router.routing import CallRouting
from router.store import CallStore
from telephony.actions import CallActions

log = logging.getLogger(__name__)


class CallerChoices:
    """Menu keys, opt-outs and the language check's keys (the calls' state is the coordinator's)."""

    def __init__(self, *, policy: Policy, store: CallStore, actions: CallActions, metrics: Metrics,
                 calls: dict[str, CallState], routing: CallRouting, listener: CallListener | None,
                 persist: Callable[[CallState, Callable[[], Coroutine[Any, Any, Any]]], asyncio.Task[Any]],
                 spawn: Callable[[CallState, Coroutine[Any, Any, None]], asyncio.Task[None]],
                 enter_phase: Callable[[str, str, float | None], None],
                 on_opt_out: Callable[[str], Coroutine[Any, Any, None]] | None = None) -> None:
        """Use the coordinator's calls, routing, listener, ``persist`` (write order), ``spawn``, ``enter_phase``."""
        self.policy = policy
        self.store = store
        self.actions = actions
        self.metrics = metrics
        self.calls = calls
        self.routing = routing
        self.listener = listener
        self._persist = persist
        self._spawn = spawn
        self.enter_phase = enter_phase
        self.on_opt_out = on_opt_out

    def keyed(self, call_sid: str, key: str, decision: Decision) -> None:
        """The caller pressed a menu key and the keypad webhook routed the call by it (``decision``).

        Twilio already has the keypad webhook's answer, so nothing is redirected from here; the
        decision is stored in the call's write order and later tone only raises its priority.
        """
        state = self.calls.get(call_sid)
        if state is None or state.ended:
            return
        first = state.decision is None
        state.key, state.decision = key, decision
        state.arrival = time.time()
        if state.timer is not None:
            state.timer.cancel()
        t = state.segmenter.seconds
        self.metrics.decisions.labels(decision.queue, decision.rule).inc()
        log.info("call %s keyed %s -> %s priority %d", call_sid, key, decision.queue, decision.priority)
        fields = {"keypad": key}
        keyed_intent = self.policy.keypad.menu[key].intent if key in self.policy.keypad.menu else None
        if keyed_intent and not state.opted_out:  # the agent's card and topic analytics see the stated intent
            said = said_so_far(state)
            fields["intents"] = ",".join(sorted({keyed_intent, *(said.intents if said else ())}))
        self._persist(state, lambda: self.store.mark(call_sid=call_sid, fields=fields,
                                                     entry={"type": "key", "key": key, "t": round(t, 3)}))
        self._persist(state, lambda: self.store.record_decision(
            call_sid=call_sid, decision=decision, t=t, arrival=state.arrival, latency_ms=None,
            kind="decision" if first else "keypad", enqueued=not self.policy.identification))
        self.enter_phase(call_sid, "identification" if self.policy.identification else "queue", None)

    async def opt_out(self, call_sid: str, via: str) -> bool:
        """The caller refused the analysis: stop scoring, delete what was stored; False if not held here.

        Writes already queued for the call land first (its write order), then the deletion; nothing
        analysed is written after it.
        """
        state = self.calls.get(call_sid)
        if state is None or state.opted_out:
            return state is not None
        state.opted_out = True
        state.points.clear()
        state.texts.clear()
        state.english_readings.clear()
        state.partial = None
        t = state.segmenter.seconds
        self.metrics.opt_outs.inc()
        log.info("call %s: caller opted out of analysis (%s)", call_sid, via)
        await self._persist(state, lambda: self.store.opt_out(call_sid=call_sid, t=t, via=via))
        if self.on_opt_out is not None:
            await self.on_opt_out(call_sid)
        return True

    def speaks_language(self, call_sid: str, language: str) -> None:
        """The caller keyed at the language check the language they speak: what they say next is heard in it.

        English: what they said so far is heard again by the English recogniser (and may re-route
        the call). Another served language: what was heard so far was translated from a language
        they do not speak, so its words are set aside; the next utterance is transcribed in theirs.
        """
        state = self.calls.get(call_sid)
        if state is None or state.ended or (language != "en" and language not in self.policy.languages.routes):
            return
        state.language, state.language_routed, state.runners_up = language, True, ()
        log.info("call %s: the caller keyed that they speak %s", call_sid, language)
        self._persist(state, lambda: self.store.set_language(call_sid=call_sid, language=language, probability=1.0,
                                                             t=state.segmenter.seconds, route="keyed"))
        if language != "en":
            state.texts, state.partial = [], None
            state.english_readings.clear()
        elif self.listener is not None and not state.opted_out:  # an opted-out caller's words are not analysed
            self._spawn(state, self._hear_again_in_english(state))

    async def _hear_again_in_english(self, state: CallState) -> None:
        """Route by what the English recogniser heard of the caller so far (they keyed that they speak English)."""
        assert self.listener is not None
        await self.listener.heard_in_english(state)
        if state.decision is not None and not state.ended and not state.opted_out:
            await self.routing.after_decision(state, reheard=True)

    async def speech_opt_out(self, state: CallState, text: TextSignals) -> bool:
        """Opt the caller out if what they said refuses the analysis; return whether they did.

        Before routing, the call is redirected (stream stopped, confirmation, keypad menu). Once it
        is queued or with an agent, only the stream is stopped (Twilio's Stream resource), so the
        caller keeps their place in the queue or their conversation; the agent's card says so.
        """
        if not says_any(text.snippet, self.policy.opt_out.phrases):
            return False
        await self.opt_out(state.call_sid, "speech")
        if state.timer is not None:
            state.timer.cancel()
        if state.ended:
            return True
        if state.decision is None and not state.with_agent:
            # routed by keypad (the menu follows the confirmation) or, with no key, the default queue
            state.decision = Decision(self.policy.default_queue, self.policy.default_priority,
                                      "caller opted out of analysis", "opt_out")
            state.arrival = time.time()
            decision = state.decision
            await self._persist(state, lambda: self.store.record_decision(
                call_sid=state.call_sid, decision=decision, t=state.segmenter.seconds, arrival=state.arrival,
                latency_ms=None))
            await self.routing.send_route(state, state.decision, menu=True, opting_out=True)
        else:
            self._spawn(state, self._stop_stream(state))
        return True

    async def _stop_stream(self, state: CallState) -> None:
        """Stop the call's stream where it is; a failure leaves audio arriving, which is ignored."""
        try:
            await self.actions.stop_stream(state.call_sid)
        except Exception:  # noqa: BLE001 - the coordinator already ignores an opted-out call's audio
            self.metrics.errors.labels("twilio_rest").inc()
            log.exception("call %s: stopping the stream failed; its audio is ignored", state.call_sid)
