"""The call flow as TwiML: what a decided, keyed, opted-out or surveyed call hears next.

Shared by the live coordinator (it redirects a call through Twilio's REST API) and the web
layer's webhooks (they answer Twilio with the document directly), so both send the same flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from router.policy import Decision, Policy
from telephony.actions import RouteSpec
from telephony.twiml import (
    FlowUrls,
    Spoken,
    enqueue_twiml,
    identify_twiml,
    keypad_menu_twiml,
    language_check_twiml,
    survey_twiml,
    with_stream_stopped,
)


@dataclass(frozen=True)
class CallFlow:
    """The policy's prompts and steps, the webhook URLs, and the TaskRouter workflow (if any)."""

    policy: Policy
    urls: FlowUrls
    workflow_sid: str | None = None

    def _enqueue_args(self, call_sid: str, queue: str, priority: int, extra: dict[str, Any]) -> dict[str, Any]:
        return {"twilio_queue": self.policy.queues[queue].twilio_queue, "priority": priority,
                "attributes": {"call_sid": call_sid, **extra}, "workflow_sid": self.workflow_sid,
                "action_url": self.urls.queue_result}

    def enqueue(self, call_sid: str, queue: str, priority: int, extra: dict[str, Any] | None = None,
                language: str = "") -> str:
        """Return the TwiML that queues the call (the agent leg's end then reaches the survey).

        A caller speaking ``language`` hears its route's hold message in it, when the policy gives one.
        """
        prompts = self.policy.prompts
        route = self.policy.languages.route(language)
        hold, voice, say_language = prompts.hold, prompts.voice, None
        if route is not None and route.hold:
            hold, voice, say_language = route.hold, route.voice or prompts.voice, route.say_language
        return enqueue_twiml(**self._enqueue_args(call_sid, queue, priority, extra or {}),
                             hold_prompt=hold, voice=voice, say_language=say_language)

    def identify(self, step: int, queue: str, priority: int, language: str = "") -> str | None:
        """Return identification step ``step`` (the route travels in its action URL), None past the last."""
        if step >= len(self.policy.identification):
            return None
        s = self.policy.identification[step]
        return identify_twiml(prompt=s.prompt, voice=self.policy.prompts.voice,
                              action_url=self.urls.identify(step, queue, priority, language), input_kind=s.input,
                              finish_on_key=s.finish_on_key, max_digits=s.max_digits, timeout_s=s.timeout_seconds)

    def after_decision(self, call_sid: str, decision: Decision, extra: dict[str, Any] | None = None,
                       language: str = "") -> str:
        """Return what a routed call hears: the first identification step, or the queue."""
        return (self.identify(0, decision.queue, decision.priority, language)
                or self.enqueue(call_sid, decision.queue, decision.priority, extra, language))

    def checks_language(self, language: str) -> bool:
        """Return whether a caller taken for ``language`` is asked whether they speak English."""
        return self.policy.languages.check.enabled and self.policy.languages.route(language) is not None

    def language_check(self, queue: str, priority: int, language: str, then: str,
                       runners_up: Sequence[str] = ()) -> str | None:
        """Return the check a caller taken for ``language`` hears first (None: English, or checks are off).

        ``then``: what follows it, ``identify`` (a first route) or ``queue`` (a re-route).
        ``runners_up``: the languages the identifier ranked next, likeliest first (the policy's
        ``offer_others`` of them with a key are offered, each in its own language).
        """
        if not self.checks_language(language):
            return None
        rules = self.policy.languages
        route = rules.route(language)
        assert route is not None
        voice = self.policy.prompts.voice
        offers = [Spoken(r.offer or "", r.voice or voice, r.say_language)
                  for _, r in rules.offers(language, runners_up)]
        return language_check_twiml(own=Spoken(route.confirm or "", route.voice or voice, route.say_language),
                                    english=Spoken(rules.check.english_prompt, voice), offers=offers,
                                    action_url=self.urls.language(queue, priority, language, then),
                                    timeout_s=rules.check.timeout_seconds)

    def after_language_check(self, call_sid: str, queue: str, priority: int, language: str, then: str) -> str:
        """Return what follows the language check: identification (``then`` identify) or the queue."""
        nxt = self.identify(0, queue, priority, language) if then == "identify" else None
        return nxt or self.enqueue(call_sid, queue, priority, self.language_attributes(language), language)

    def language_attributes(self, language: str) -> dict[str, str]:
        """Return the task attributes a caller's language adds (its code, and the route's skill)."""
        if not language:
            return {}
        route = self.policy.languages.route(language)
        return {"language": language, **({"skill": route.skill} if route is not None and route.skill else {})}

    def keypad_menu(self, call_sid: str, *, lead: str = "", stop_stream: bool = False) -> str:
        """Return the keypad menu; no key and the call goes to the default queue."""
        p = self.policy
        return keypad_menu_twiml(
            menu_prompt=p.keypad.prompt(), voice=p.prompts.voice, action_url=self.urls.keypad("menu"),
            timeout_s=p.keypad.menu_timeout_seconds, lead=lead, stop_stream=stop_stream,
            default_enqueue=self._enqueue_args(call_sid, p.default_queue, p.default_priority,
                                               {"reason": "no key pressed"}))

    def opted_out(self, call_sid: str) -> str:
        """Return what a caller who refused the analysis hears: the stream stops, then the keypad menu."""
        return self.keypad_menu(call_sid, lead=self.policy.opt_out.confirmation, stop_stream=True)

    def survey(self, attempt: int = 0) -> str:
        """Return the survey question (a retry says what keys are allowed first)."""
        s = self.policy.survey
        return survey_twiml(question=s.question, voice=self.policy.prompts.voice, action_url=self.urls.survey(attempt),
                            timeout_s=s.timeout_seconds, lead=s.retry if attempt else "")

    def route_spec(self, call_sid: str, decision: Decision, emotion: str, *, menu: bool = False,
                   identify: bool = True, lead: str = "", stop_stream: bool = False, language: str = "",
                   check_language: bool = False, runners_up: Sequence[str] = ()) -> RouteSpec:
        """Return the REST redirect of a decided call.

        ``menu``: nothing usable was heard, offer the keypad menu; ``identify``: a first route goes
        through the identification steps (a re-route goes straight to its queue); ``lead`` and
        ``stop_stream``: an opt-out heard in speech stops the stream and confirms first. ``language``:
        the caller's, when not English (the task carries it and its skill; the hold message is in it).
        ``check_language``: the language check comes first, when the policy asks it (once a call),
        offering ``runners_up`` (the identifier's next languages) besides English.
        """
        p = self.policy
        attributes = {"call_sid": call_sid, "reason": decision.reason, "emotion": emotion,
                      **self.language_attributes(language)}
        check = None if menu or stop_stream or not check_language else self.language_check(
            decision.queue, decision.priority, language, "identify" if identify else "queue", runners_up)
        if menu:
            twiml = self.keypad_menu(call_sid, lead=lead, stop_stream=stop_stream)
        elif check is not None:
            twiml = check
        elif identify:
            twiml = self.after_decision(call_sid, decision, attributes, language)
        else:
            twiml = self.enqueue(call_sid, decision.queue, decision.priority, attributes, language)
        if stop_stream and not menu:
            twiml = with_stream_stopped(twiml, lead, p.prompts.voice)
        return RouteSpec(twilio_queue=p.queues[decision.queue].twilio_queue, priority=decision.priority,
                         attributes=attributes, hold_prompt=p.prompts.hold, voice=p.prompts.voice,
                         action_url=self.urls.queue_result, twiml=twiml)
