"""The TwiML documents EmoRoute answers with, and the call flow's webhook URLs.

A call's flow: greeting (the disclosure names how to opt out; the question is asked inside a
keypad ``<Gather>`` while the Media Stream runs), then the route (identification steps, if any,
then ``<Enqueue>`` whose ``action`` fires when the agent leg ends), then the survey.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

STREAM_NAME = "emoroute"  # the <Stream> name that <Stop><Stream> refers to


@dataclass(frozen=True)
class FlowUrls:
    """The absolute webhook URLs of the call flow (Twilio signs them, query included)."""

    public_url: str

    def _url(self, path: str, query: dict[str, Any] | None = None) -> str:
        base = self.public_url.rstrip("/") + path
        return f"{base}?{urlencode(query)}" if query else base

    @property
    def fallback(self) -> str:
        """The never-drop guard: where a call goes when no route came in time."""
        return self._url("/twilio/fallback")

    def keypad(self, stage: str) -> str:
        """Where a key pressed during the question (``stage=listen``) or the menu (``menu``) goes."""
        return self._url("/twilio/keypad", {"stage": stage})

    def identify(self, step: int, queue: str, priority: int, language: str = "") -> str:
        """Where an identification step's answer goes; the route (and the caller's language) travel with it."""
        return self._url("/twilio/identify", {"step": step, "queue": queue, "priority": priority,
                                              **({"language": language} if language else {})})

    def language(self, queue: str, priority: int, language: str, then: str) -> str:
        """Where the language check's key goes; the route and the step after it (identify or queue) travel with it."""
        return self._url("/twilio/language", {"queue": queue, "priority": priority, "language": language,
                                              "then": then})

    @property
    def queue_result(self) -> str:
        """The <Enqueue> action: Twilio requests it when the call leaves the queue (after the agent leg)."""
        return self._url("/twilio/queue-result")

    def survey(self, attempt: int) -> str:
        """Where the survey's key goes (``attempt`` counts retries after a key outside 1-5)."""
        return self._url("/twilio/survey", {"attempt": attempt})


def greeting_twiml(
    *,
    stream_url: str,
    urls: FlowUrls,
    disclosure: str,
    question: str,
    voice: str,
    listen_seconds: float,
    parameters: dict[str, str],
) -> str:
    """Return TwiML that discloses analysis, starts the inbound Media Stream, asks (keypad open), and holds.

    ``<Start><Stream>`` (not ``<Connect>``) keeps the stream running while the caller waits in a
    queue and talks to an agent. The question is asked inside ``<Gather input="dtmf">``: a key
    (a menu choice, or the opt-out key) goes to the keypad webhook at once. If neither a key nor
    the routing redirect comes, the ``<Redirect>`` sends the call to the fallback: a caller is
    never dropped.
    """
    resp = VoiceResponse()
    resp.say(disclosure, voice=voice)
    stream = resp.start().stream(name=STREAM_NAME, url=stream_url, track="inbound_track")
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    gather = resp.gather(input="dtmf", num_digits=1, action=urls.keypad("listen"), method="POST",
                         timeout=max(1, round(listen_seconds)), action_on_empty_result=False)
    gather.say(question, voice=voice)
    resp.redirect(urls.fallback, method="POST")
    return str(resp)


def _enqueue(resp: VoiceResponse, *, twilio_queue: str, priority: int, attributes: dict[str, Any],
             workflow_sid: str | None, action_url: str | None) -> None:
    extra = {"action": action_url, "method": "POST"} if action_url else {}
    if workflow_sid:
        enqueue = resp.enqueue(None, workflow_sid=workflow_sid, **extra)
        enqueue.task(json.dumps({**attributes, "queue": twilio_queue}, sort_keys=True), priority=priority)
    else:
        resp.enqueue(twilio_queue, **extra)


def enqueue_twiml(
    *,
    twilio_queue: str,
    priority: int,
    attributes: dict[str, Any],
    workflow_sid: str | None,
    hold_prompt: str,
    voice: str,
    action_url: str | None = None,
    say_language: str | None = None,
) -> str:
    """Return TwiML that puts the call in its queue (a TaskRouter task when a workflow is set).

    ``action_url`` (the flow's queue-result webhook) is requested when the call leaves the queue:
    after a bridged call, when the agent leg ends, which is where the survey starts.
    ``say_language``: the hold prompt's language (``<Say language=...>``, e.g. es-ES).
    """
    resp = VoiceResponse()
    resp.say(hold_prompt, voice=voice, **({"language": say_language} if say_language else {}))
    _enqueue(resp, twilio_queue=twilio_queue, priority=priority, attributes=attributes,
             workflow_sid=workflow_sid, action_url=action_url)
    return str(resp)


def identify_twiml(*, prompt: str, voice: str, action_url: str, input_kind: str, finish_on_key: str,
                   max_digits: int, timeout_s: int) -> str:
    """Return one identification step: the prompt inside a ``<Gather>``; no answer goes on all the same."""
    resp = VoiceResponse()
    gather = resp.gather(input=input_kind, action=action_url, method="POST", finish_on_key=finish_on_key,
                         num_digits=max_digits, timeout=timeout_s, action_on_empty_result=True)
    gather.say(prompt, voice=voice)
    resp.redirect(action_url, method="POST")  # not reached when the gather submits (empty result included)
    return str(resp)


@dataclass(frozen=True)
class Spoken:
    """A sentence said in one voice (and language, for ``<Say language=...>``; None: the voice's own)."""

    text: str
    voice: str
    language: str | None = None


def language_check_twiml(*, own: Spoken, english: Spoken, offers: Sequence[Spoken] = (), action_url: str,
                         timeout_s: int) -> str:
    """Return the language check: the caller's language, the English key, other languages' keys.

    A sentence in the caller's language (if any), the English key's prompt, then each other
    language's offer of its key, in that language. No key is an answer too (the language stays):
    the action is requested with an empty result.
    """
    resp = VoiceResponse()
    gather = resp.gather(input="dtmf", action=action_url, method="POST", num_digits=1, timeout=timeout_s,
                         action_on_empty_result=True)
    for line in (own, english, *offers):
        if line.text:
            gather.say(line.text, voice=line.voice, **({"language": line.language} if line.language else {}))
    resp.redirect(action_url, method="POST")  # not reached when the gather submits (empty result included)
    return str(resp)


def keypad_menu_twiml(*, menu_prompt: str, voice: str, action_url: str, timeout_s: int, lead: str = "",
                      stop_stream: bool = False, default_enqueue: dict[str, Any]) -> str:
    """Return the keypad menu; with no key within ``timeout_s`` the caller is queued by ``default_enqueue``.

    ``stop_stream`` first stops the Media Stream (the caller opted out of analysis) and ``lead``
    is said before the menu (the opt-out confirmation).
    """
    resp = VoiceResponse()
    if stop_stream:
        resp.stop().stream(name=STREAM_NAME)
    if lead:
        resp.say(lead, voice=voice)
    # an empty result is submitted too: the keypad webhook then queues the call (and records it)
    gather = resp.gather(input="dtmf", num_digits=1, action=action_url, method="POST", timeout=timeout_s,
                         action_on_empty_result=True)
    gather.say(menu_prompt, voice=voice)
    _enqueue(resp, **default_enqueue)
    return str(resp)


def survey_twiml(*, question: str, voice: str, action_url: str, timeout_s: int, lead: str = "") -> str:
    """Return the one-question survey (one key, 1-5); no key ends the call politely."""
    resp = VoiceResponse()
    gather = resp.gather(input="dtmf", num_digits=1, action=action_url, method="POST", timeout=timeout_s,
                         action_on_empty_result=False)
    if lead:
        gather.say(lead, voice=voice)
    gather.say(question, voice=voice)
    resp.hangup()
    return str(resp)


def goodbye_twiml(*, text: str, voice: str) -> str:
    """Return TwiML that says ``text`` and hangs up."""
    resp = VoiceResponse()
    if text:
        resp.say(text, voice=voice)
    resp.hangup()
    return str(resp)


def with_stream_stopped(twiml: str, lead: str, voice: str) -> str:
    """Return ``twiml`` preceded by ``<Stop><Stream>`` and ``lead`` (an opt-out while already routed)."""
    root = ET.fromstring(twiml)
    stop = ET.Element("Stop")
    ET.SubElement(stop, "Stream", {"name": STREAM_NAME})
    verbs = [stop]
    if lead:
        say = ET.Element("Say", {"voice": voice})
        say.text = lead
        verbs.append(say)
    for i, verb in enumerate(verbs):
        root.insert(i, verb)
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")
