"""The TwiML documents EmoRoute answers with."""

from __future__ import annotations

import json
from typing import Any

from twilio.twiml.voice_response import VoiceResponse


def greeting_twiml(
    *,
    stream_url: str,
    fallback_url: str,
    disclosure: str,
    question: str,
    voice: str,
    listen_seconds: float,
    parameters: dict[str, str],
) -> str:
    """Return TwiML that discloses analysis, starts the inbound Media Stream, asks, and holds.

    ``<Start><Stream>`` (not ``<Connect>``) keeps the stream running while the
    caller waits in a queue and talks to an agent. If the routing redirect never
    comes, the ``<Redirect>`` after the pause sends the call to the fallback
    queue: a caller is never dropped.
    """
    resp = VoiceResponse()
    resp.say(disclosure, voice=voice)
    stream = resp.start().stream(url=stream_url, track="inbound_track")
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    resp.say(question, voice=voice)
    resp.pause(length=max(1, round(listen_seconds)))
    resp.redirect(fallback_url, method="POST")
    return str(resp)


def enqueue_twiml(
    *,
    twilio_queue: str,
    priority: int,
    attributes: dict[str, Any],
    workflow_sid: str | None,
    hold_prompt: str,
    voice: str,
) -> str:
    """Return TwiML that puts the call in its queue (a TaskRouter task when a workflow is set)."""
    resp = VoiceResponse()
    resp.say(hold_prompt, voice=voice)
    if workflow_sid:
        enqueue = resp.enqueue(None, workflow_sid=workflow_sid)
        enqueue.task(json.dumps({**attributes, "queue": twilio_queue}, sort_keys=True), priority=priority)
    else:
        resp.enqueue(twilio_queue)
    return str(resp)
