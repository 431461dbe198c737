"""API for agents and supervisors: calls, timelines, queues; agents take the next call; erasure."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from emoroute.web.deps import Principal, PrincipalDep, ServicesDep, SupervisorDep
from emoroute.web.stored_calls import stored_call, stored_timeline
from router.phases import caller_hash
from router.redact import mask_phone

router = APIRouter(prefix="/api", tags=["api"])
log = logging.getLogger(__name__)
# a number as Twilio gives it, or a Twilio Client identity ("client:alice"); a withheld number
# ("anonymous") names no one: such a caller's calls are erased one by one (DELETE /api/calls/{sid})
CLIENT_IDENTITY = re.compile(r"^client:[A-Za-z0-9_]{1,121}$")
SIP_URI = re.compile(r"^sips?:[^@\s;]{1,64}@[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?(?:;[^\s]{0,200})?$")
WITHHELD = {"anonymous", "restricted", "unavailable", "unknown", "private"}


def _may_see(principal: Principal, call: dict[str, str]) -> bool:
    return principal.role == "supervisor" or call.get("agent") == principal.agent_id


@router.get("/calls")
async def list_calls(
    services: ServicesDep,
    principal: PrincipalDep,
    live: bool = False,
    limit: int = Query(100, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    """Return live or recent calls (an agent sees only calls assigned to them)."""
    calls = await services.store.list_calls(live_only=live, limit=limit)
    return [c for c in calls if _may_see(principal, c)]


async def _visible_call(services: ServicesDep, principal: Principal, call_sid: str) -> dict[str, str]:
    call = await stored_call(services, call_sid)
    if call is None or not _may_see(principal, call):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no call {call_sid} visible to you")
    return call


@router.get("/calls/{call_sid}")
async def get_call(call_sid: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Return one call's summary (from the history store, marked ``archived``, once Redis no longer holds it)."""
    return await _visible_call(services, principal, call_sid)


@router.get("/calls/{call_sid}/timeline")
async def get_timeline(call_sid: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Return one call's emotion timeline with decisions and pickups."""
    call = await _visible_call(services, principal, call_sid)
    return {"call": call, "timeline": await stored_timeline(services, call)}


@router.get("/queues")
async def queues(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Return queue depth, oldest wait and waiting calls per queue.

    An agent sees only the queues they serve, and their waiting calls without SIDs.
    """
    stats = await services.store.desk.queue_stats(time.time())
    if principal.role == "supervisor":
        return stats
    agent = await services.store.desk.get_agent(principal.agent_id or "") or {}
    mine = set(agent.get("skills", "").split(","))
    return {q: {**figures, "calls": [{k: v for k, v in c.items() if k != "call_sid"} for c in figures["calls"]]}
            for q, figures in stats.items() if q in mine}


class AgentIn(BaseModel):
    """An agent and the queues they serve."""

    name: str = Field(min_length=1, max_length=100)
    skills: list[str] = Field(min_length=1)


@router.put("/agents/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
async def put_agent(agent_id: str, body: AgentIn, services: ServicesDep, _: SupervisorDep) -> None:
    """Create or update an agent (supervisor only)."""
    try:
        await services.store.desk.register_agent(agent_id=agent_id, name=body.name, skills=body.skills)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


@router.post("/agents/{agent_id}/next")
async def take_next(agent_id: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Assign the best waiting call in the agent's queues to the agent."""
    if principal.role == "agent" and principal.agent_id != agent_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "agents may only take calls for themselves")
    try:
        sid = await services.store.desk.take_next(agent_id=agent_id)
    except KeyError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent {agent_id}") from exc
    if sid:
        services.coordinator.mark_with_agent(sid)
        if services.registry is not None:  # the call's stream may be held by another web process
            await services.registry.forward(sid, {"action": "with_agent"})
    return {"call_sid": sid, "call": await services.store.get_call(sid) if sid else None}


@router.get("/dry-run/requests")
async def dry_run_requests(services: ServicesDep, _: SupervisorDep,
                           call_sid: str | None = None) -> list[dict[str, Any]]:
    """Return the Twilio REST requests recorded in dry-run mode (empty when live), or one call's."""
    return [r.as_dict() for r in list(getattr(services.actions, "requests", []))
            if call_sid is None or r.call_sid == call_sid]


class Erasure(BaseModel):
    """Whose calls to erase: a caller's number (kept out of URLs and access logs)."""

    number: str = Field(..., max_length=300, description="The caller's number (E.164, with or without +, spaces "
                                                         "or dashes), a Twilio Client identity or a SIP URI")


def caller_identities(raw: str) -> list[str]:
    """Return the forms a caller's identity may be stored in (Twilio's From), or raise 422.

    A number is normalised to E.164 (``+`` and digits; "00" or no prefix are read as
    international) and also looked for as given without ``+``; ``client:`` identities and
    ``sip:`` URIs are taken as they are (a SIP URI's parameters dropped).
    """
    text = raw.strip()
    if text.lower() in WITHHELD:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"number: {text[:40]!r} is a withheld number, shared by every such caller; erase "
                            "their calls one by one with DELETE /api/calls/{call_sid}")
    if CLIENT_IDENTITY.match(text):
        return [text]
    if SIP_URI.match(text):
        return [text.split(";", 1)[0]]
    digits = re.sub(r"[\s().-]", "", text)
    digits = "+" + digits[2:] if digits.startswith("00") else digits
    if not re.fullmatch(r"\+?[0-9]{4,16}", digits):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "number: the caller's number (E.164: + and 4-16 digits; spaces, dashes and a "
                            "missing + are accepted), a Twilio Client identity (client:name) or a SIP URI")
    bare = digits.lstrip("+")
    return ["+" + bare, bare]


async def _erase_caller(raw: str, services: ServicesDep) -> dict[str, Any]:
    forms = caller_identities(raw)
    secret = services.settings.secret_key
    hashes = [caller_hash(secret, f) for f in forms]
    calls = await services.store.erasure.calls_of_caller(numbers=forms, number_hashes=hashes)
    done = [c["call_sid"] for c in calls if _has_ended(services, c)]
    live = [c["call_sid"] for c in calls if c["call_sid"] not in done]
    erased = await services.store.erasure.erase_calls(done, numbers=forms)
    if services.scrubber is not None:
        await services.scrubber.erased(done)
    # the history store: these calls, and the caller's calls Redis no longer holds
    archived = await _erase_history(services, done, hashes)
    done += [sid for sid in archived if sid not in done]
    log.info("erasure: %d calls of caller %s deleted (%d from the history store), %d still live", erased,
             mask_phone(forms[0]), len(archived), len(live))
    return {"erased": done, "live": live}


async def _erase_history(services: ServicesDep, call_sids: list[str], caller_hashes: list[str]) -> list[str]:
    """Erase calls from the history store; return the SIDs it held (503 if it cannot be reached)."""
    if services.history is None:
        return []
    try:
        return await asyncio.to_thread(services.history.erase, call_sids=call_sids, caller_hashes=caller_hashes)
    except Exception as exc:  # noqa: BLE001 - the request must fail loudly: the erasure is not complete
        log.error("erasure: the history store could not be reached (%s)", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "the calls were erased from Redis but not from the history store: repeat the "
                            "request once it is back") from exc


@router.post("/erasures")
async def erase_caller_by_body(body: Erasure, services: ServicesDep, _: SupervisorDep) -> dict[str, Any]:
    """Erase every finished call of a caller (a data subject's right to erasure), the number in the body.

    Each call's summary, timeline and index entries are deleted, with the analytics roll-ups of
    the hours they started in (recounted without them), what this process spooled for them and,
    within seconds, what Redis's files on disk held. A call still in progress is not touched
    and is named in ``live``: repeat the request once it has ended. Supervisor only.
    """
    return await _erase_caller(body.number, services)


@router.delete("/callers/{number}")
async def erase_caller(number: str, services: ServicesDep, _: SupervisorDep) -> dict[str, Any]:
    """The same as ``POST /api/erasures``, the number in the path (masked in the access log). Supervisor only."""
    return await _erase_caller(number, services)


def _has_ended(services: ServicesDep, call: dict[str, str]) -> bool:
    """A call has ended when it says so, or started longer ago than the longest call can last."""
    over = time.time() - services.settings.max_call_seconds
    return call.get("status") == "ended" or float(call.get("started_at") or 0) < over


@router.delete("/calls/{call_sid}")
async def erase_call(call_sid: str, services: ServicesDep, _: SupervisorDep) -> dict[str, Any]:
    """Erase one finished call (for a caller whose number was withheld, found by its time). Supervisor only.

    The same as erasing a caller, for one call: 404 if there is no such call, 409 while it is in progress.
    """
    call = await services.store.get_call(call_sid)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no call {call_sid}")
    if not _has_ended(services, call):
        raise HTTPException(status.HTTP_409_CONFLICT, f"call {call_sid} is in progress: erase it once it has ended")
    await services.store.erasure.erase_calls([call_sid], numbers=[call.get("caller", "")] if call.get("caller") else [])
    if services.scrubber is not None:
        await services.scrubber.erased([call_sid])
    await _erase_history(services, [call_sid], [])
    log.info("erasure: call %s deleted", call_sid)
    return {"erased": [call_sid], "live": []}
