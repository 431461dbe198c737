"""Dashboards: agent cues, supervisor wallboard, call timeline, analytics; live over server-sent events.

Pages are server-rendered shells (Jinja2, autoescaped) whose scripts read JSON
from the endpoints below and listen to ``/dashboard/events``. Every value that
came from a caller (customParameters, transcripts) is inserted with
``textContent`` in the browser, never as HTML. Plotly's JavaScript is served
from the plotly wheel: no CDN, nothing pasted into this repository.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import plotly
from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

import dashboards
from dashboards import sql_insights
from dashboards.hub import Subscription, TooManyConnections
from dashboards.insights import mark_repeats, repeat_index
from dashboards.rollup import callers_between, period_figures
from dashboards.state import CSV_READ_FIELDS, AgentView, agent_state, csv_header, csv_rows, wallboard
from emoroute.web.deps import (
    SESSION_COOKIE,
    Principal,
    ServicesDep,
    SettingsDep,
    bearer_token,
    dashboard_principal,
    principal_for_session,
    principal_for_token,
    session_cookie,
    session_expiry,
    session_id,
)
from emoroute.web.stored_calls import stored_call, stored_timeline

HERE = Path(dashboards.__file__).resolve().parent  # the dashboards package: templates/ and static/
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
# an hour's analytics roll-up is stored once every call that started in it has ended (the maximum
# call length) and this margin has passed (late writes, a short Redis outage's outbox)
ROLLUP_MARGIN_S = 3600.0
templates = Jinja2Templates(directory=str(HERE / "templates"))
log = logging.getLogger(__name__)
router = APIRouter(prefix="/dashboard", tags=["dashboards"])


async def _principal_or_none(request: Request, services: ServicesDep) -> Principal | None:
    """Return who is asking: a bearer token, else a session cookie that was not signed out."""
    principal = dashboard_principal(request, services.settings)
    session = session_id(request.cookies.get(SESSION_COOKIE))
    if principal is None or bearer_token(request) or session is None:
        return principal
    return None if await services.sessions.revoked(session) else principal


def _signed_in(request: Request, settings: SettingsDep, target: str, principal: Principal, token: str) -> Response:
    """Redirect to ``target`` with a signed, expiring session cookie (Secure behind TLS)."""
    redirect = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    secure = request.url.scheme == "https" or settings.public_url.startswith("https://")
    redirect.set_cookie(SESSION_COOKIE, session_cookie(principal, token, settings), httponly=True,
                        samesite="strict", secure=secure, max_age=settings.session_max_age_s, path="/")
    return redirect


def _login_page(request: Request, target: str, *, error: str = "", code: int = status.HTTP_401_UNAUTHORIZED
                ) -> Response:
    context: dict[str, Any] = {"next": target}
    if error:
        context["error"] = error
    return templates.TemplateResponse(request, "login.html", context, status_code=code)


async def _checked_login(request: Request, services: ServicesDep, token: str, target: str) -> Principal | Response:
    """Return the token's principal, or the login page (429 past the attempts limit, else "Unknown token")."""
    client = request.client.host if request.client else "?"
    if request.headers.get("sec-fetch-site") == "cross-site":
        # login CSRF: another site's form or link would sign the victim in as the attacker
        return _login_page(request, target, error="Sign in from this site's own login page",
                           code=status.HTTP_403_FORBIDDEN)
    guard = services.login_guard
    if not await guard.attempt(client):
        return _login_page(request, target, error="Too many failed logins; wait a minute",
                           code=status.HTTP_429_TOO_MANY_REQUESTS)
    principal = principal_for_token(token, services.settings)
    if principal is None:
        services.metrics.login_failures.inc()
        services.refusals.warning(log, "failed dashboard login from %s", client)
        return _login_page(request, target, error="Unknown token")
    await guard.succeeded(client)
    return principal


async def _page(request: Request, services: ServicesDep, template: str, **context: Any) -> Response:
    """Render a page for an authenticated user; a valid ?token= becomes a session cookie, once."""
    settings = services.settings
    token = request.query_params.get("token")
    if token is not None:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        clean = request.url.path + ("?" + "&".join(f"{k}={v}" for k, v in params) if params else "")
        checked = await _checked_login(request, services, token, clean)
        if isinstance(checked, Response):
            return checked
        return _signed_in(request, settings, clean, checked, token)
    principal = await _principal_or_none(request, services)
    if principal is None:
        return _login_page(request, request.url.path + ("?" + request.url.query if request.url.query else ""))
    return templates.TemplateResponse(request, template, {"role": principal.role, "me": principal.agent_id or "",
                                                          **context})


@router.post("/login", include_in_schema=False)
async def login(request: Request, services: ServicesDep, token: str = Form(..., max_length=512),
                next: str = Form("/dashboard", max_length=2048)) -> Response:
    """Check a token and start a session (a signed, expiring HttpOnly cookie)."""
    target = next if next.startswith("/dashboard") and not next.startswith("//") else "/dashboard"
    checked = await _checked_login(request, services, token, target)
    if isinstance(checked, Response):
        return checked
    return _signed_in(request, services.settings, target, checked, token)


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, services: ServicesDep) -> Response:
    """End the dashboard session (POST only: a link or image elsewhere cannot sign anyone out).

    The session goes on the revocation list for what is left of its lifetime, so a copy of the
    cookie stops working too, on every web process.
    """
    cookie = request.cookies.get(SESSION_COOKIE)
    session = session_id(cookie)
    if session is not None and principal_for_session(cookie, services.settings) is not None:
        await services.sessions.revoke(session, until=session_expiry(cookie) or time.time())
    redirect = RedirectResponse("/dashboard", status_code=status.HTTP_303_SEE_OTHER)
    redirect.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return redirect


@router.get("", include_in_schema=False)
async def home(request: Request, services: ServicesDep) -> Response:
    """Send supervisors to the wallboard and agents to their own view."""
    principal = await _principal_or_none(request, services)
    if principal is None:
        return await _page(request, services, "login.html")
    if principal.role == "agent":
        return RedirectResponse(f"/dashboard/agent?agent={principal.agent_id}")
    return RedirectResponse("/dashboard/supervisor")


@router.get("/static/plotly.min.js", include_in_schema=False)
async def plotly_js() -> FileResponse:
    """Serve plotly.js from the installed plotly package."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


@router.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> FileResponse:
    """Serve the dashboards' own script and stylesheet."""
    if name not in STATIC:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return FileResponse(HERE / "static" / name, media_type=STATIC[name])


@router.get("/agent", response_class=HTMLResponse)
async def agent_page(request: Request, services: ServicesDep, agent: str = Query(..., max_length=64)) -> Response:
    """The agent's live cue card."""
    principal = await _principal_or_none(request, services)
    if principal and principal.role == "agent" and principal.agent_id != agent:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "agents see only their own view")
    return await _page(request, services, "agent.html", agent=agent, page="agent")


@router.get("/supervisor", response_class=HTMLResponse)
async def supervisor_page(request: Request, services: ServicesDep) -> Response:
    """The supervisor wallboard."""
    await _forbid_agents(request, services)
    return await _page(request, services, "supervisor.html", page="supervisor")


@router.get("/calls/{call_sid}", response_class=HTMLResponse)
async def call_page(call_sid: str, request: Request, services: ServicesDep) -> Response:
    """One call's emotion timeline (live or finished)."""
    return await _page(request, services, "call.html", call_sid=call_sid, page="call")


@router.get("/analytics", response_class=HTMLResponse)
async def analytics_page(request: Request, services: ServicesDep) -> Response:
    """Aggregate analytics over a time range."""
    await _forbid_agents(request, services)
    return await _page(request, services, "analytics.html", page="analytics")


async def _forbid_agents(request: Request, services: ServicesDep) -> None:
    principal = await _principal_or_none(request, services)
    if principal and principal.role != "supervisor":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "supervisor role required")


async def _require(request: Request, services: ServicesDep, *, supervisor: bool = False) -> Principal:
    principal = await _principal_or_none(request, services)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in first (session cookie or bearer token)",
                            headers={"WWW-Authenticate": "Bearer"})
    if supervisor and principal.role != "supervisor":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "supervisor role required")
    return principal


@router.get("/api/agent/{agent_id}")
async def agent_json(agent_id: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """The agent view's data: connected or next caller with cues."""
    principal = await _require(request, services)
    if principal.role == "agent" and principal.agent_id != agent_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "agents see only their own view")
    return await agent_state(services.store, services.policy, agent_id)


@router.get("/api/calls/{call_sid}/timeline")
async def call_timeline_json(call_sid: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """One call's summary and timeline for the timeline page (an agent sees only calls they took)."""
    principal = await _require(request, services)
    call = await stored_call(services, call_sid)
    if call is None or (principal.role == "agent" and call.get("agent") != principal.agent_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no call {call_sid} visible to you")
    return {"call": call, "timeline": await stored_timeline(services, call)}


@router.get("/api/wallboard")
async def wallboard_json(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Live calls, queues and alerts."""
    await _require(request, services, supervisor=True)
    return await wallboard(services.store, services.policy)


async def _range(start: str | None, end: str | None, services: ServicesDep) -> tuple[float, float]:
    """Return [start, end] as timestamps, clamped to the start times of the stored calls.

    Retention keeps the stored calls within weeks, so "?start=1976-01-01" or "?end=9999-12-31" cost
    what the stored calls cost, not decades of empty hours (security review, #33). The calls are
    the history store's when there is one, else Redis's; when neither can say, the range stays as
    asked and the figures answer 503 themselves.
    """
    lo, hi = _parse_range(start, end)
    try:
        if services.history is not None:  # the figures come from there: its calls bound the range
            bounds = await asyncio.to_thread(services.history.started_bounds)
        else:
            bounds = await services.store.stored.started_bounds()
    except Exception:  # noqa: BLE001 - Redis's or the store's errors: the figures answer 503 themselves
        return lo, hi
    if bounds is None:
        return lo, lo
    lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return lo, max(lo, hi)


def _parse_range(start: str | None, end: str | None) -> tuple[float, float]:
    now = time.time()
    try:
        lo = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp() if start else now - 86400
        hi = datetime.fromisoformat(end).replace(tzinfo=UTC).timestamp() if end else now
    except (ValueError, OverflowError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"bad time (use ISO 8601): {exc}") from exc
    if hi < lo:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end is before start")
    return lo, hi


@router.get("/api/analytics")
async def analytics_json(request: Request, services: ServicesDep, start: str | None = None,
                         end: str | None = None, repeat_days: float = Query(7.0, gt=0, le=90)) -> dict[str, Any]:
    """Aggregates over calls that started in [start, end] (UTC, ISO 8601; default: last 24 h).

    Besides the routing figures: call phases, topics, escalation, repeat callers (the same caller
    within ``repeat_days`` before), opt-outs and the post-call score against the trajectory.
    """
    await _require(request, services, supervisor=True)
    lo, hi = await _range(start, end, services)

    history = _history_or_503(services)

    async def compute() -> dict[str, Any]:
        if history is not None:  # SQL on the history store, in a thread: the live calls' loop keeps running
            return await _from_history(sql_insights.period_figures, history, lo, hi,
                                       queues=list(services.policy.queues), key_intents=_key_intents(services),
                                       repeat_days=repeat_days)
        # no history store: closed hours from their roll-ups in Redis, the rest from the calls
        return await period_figures(services.store, lo, hi, queues=list(services.policy.queues),
                                    key_intents=_key_intents(services), repeat_days=repeat_days,
                                    settle_s=services.settings.max_call_seconds + ROLLUP_MARGIN_S)

    return await services.analytics_gate.run(("analytics", round(lo), round(hi), repeat_days), compute)


def _history_or_503(services: ServicesDep) -> Any:
    """Return the history store the analytics read (None: off, they read Redis); 503 while it cannot be opened."""
    if services.history is None and services.settings.history_url != "off":
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "the history store is not open in this process yet (it is tried again; see the log)")
    return services.history


async def _from_history(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking read of the history store in a thread; a store that cannot answer is a 503."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - DuckDB's and pg8000's errors alike: named to the client as an outage
        log.warning("history store unreadable (%s)", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the history store cannot be reached") from exc


def _key_intents(services: ServicesDep) -> dict[str, str]:
    return services.policy.key_intents()


@router.get("/api/analytics.csv", response_class=PlainTextResponse)
async def analytics_csv(request: Request, services: ServicesDep, start: str | None = None,
                        end: str | None = None, repeat_days: float = Query(7.0, gt=0, le=90)) -> Response:
    """The calls in the range as CSV, oldest first, streamed 5,000 calls at a time.

    From the history store when there is one (each batch one query, the repeat-caller column from
    the callers' earlier calls there), else from Redis: the callers of the days before are read
    (from the hourly roll-ups where they exist) before the response starts, so an outage is a 503,
    not a cut file. Each batch is read and written while holding the analytics slot, one batch at
    a time, so an export of a month neither holds all its calls in memory nor crowds the live calls.
    """
    await _require(request, services, supervisor=True)
    lo, hi = await _range(start, end, services)
    gate = services.analytics_gate
    history = _history_or_503(services)
    if history is not None:
        batches_of_history = sql_insights.csv_batches(history, lo, hi, repeat_days=repeat_days)
        async with gate.slot():
            first = await _from_history(next, batches_of_history, None)

        async def archived() -> AsyncIterator[str]:
            yield csv_header()
            rows = first
            while rows is not None:
                yield await asyncio.to_thread(csv_rows, rows)
                async with gate.slot():
                    try:
                        rows = await asyncio.to_thread(next, batches_of_history, None)
                    except Exception as exc:  # noqa: BLE001 - the file is cut: say so in the log
                        log.warning("CSV export cut: the history store failed mid-export (%s)", exc)
                        return

        return StreamingResponse(archived(), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="emoroute-calls.csv"'})
    async with gate.slot():
        history_callers = await callers_between(services.store, lo - repeat_days * 86400, hi,
                                                key_intents=_key_intents(services),
                                                settle_s=services.settings.max_call_seconds + ROLLUP_MARGIN_S)
        index = await asyncio.to_thread(repeat_index, history_callers)
        sids = await services.store.stored.call_sids_between(lo, hi)

    def write(rows: list[dict[str, str]]) -> str:
        mark_repeats(rows, index, repeat_days)  # each repeat call's column
        return csv_rows(rows)

    async def lines() -> AsyncIterator[str]:
        yield csv_header()
        batches = services.store.stored.summary_batches(sids, CSV_READ_FIELDS)
        while True:
            async with gate.slot():
                rows = await anext(batches, None)
                if rows is None:
                    return
                text = await asyncio.to_thread(write, rows)
            yield text

    return StreamingResponse(lines(), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="emoroute-calls.csv"'})


@router.get("/events")
async def events(request: Request, services: ServicesDep, scope: str = Query("all", pattern="^(all|agent|call)$"),
                 id: str = Query("", max_length=64)) -> StreamingResponse:
    """Server-sent events: every call event (supervisor), one call's events, or an agent's own state."""
    principal = await _require(request, services)
    if scope == "all" and principal.role != "supervisor":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "supervisor role required")
    if scope == "agent" and principal.role == "agent" and principal.agent_id != id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "agents see only their own view")
    if scope == "call" and principal.role == "agent":
        call = await services.store.get_call(id)
        if not call or call.get("agent") != principal.agent_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no call {id} visible to you")
    try:
        # slots per browser session (signed in), else per token: supervisors share one identity,
        # and one of them must not take every slot of it
        session = None if bearer_token(request) else session_id(request.cookies.get(SESSION_COOKIE))
        subscription = services.hub.subscribe(f"session:{session}" if session
                                              else f"{principal.role}:{principal.agent_id or ''}")
    except TooManyConnections as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc)) from exc
    # released when the stream ends, and by the background task should the stream never start
    return StreamingResponse(_event_stream(request, services, scope, id, subscription),
                             media_type="text/event-stream", background=BackgroundTask(subscription.close),
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _event_stream(request: Request, services: ServicesDep, scope: str, target: str,
                        subscription: Subscription) -> AsyncIterator[str]:
    """Send the hub's events for this client; an agent's card is updated incrementally (AgentView)."""
    stopping: asyncio.Event = request.app.state.stopping
    view = AgentView(services.store, services.policy, target) if scope == "agent" else None
    services.metrics.sse_clients.inc()
    try:
        yield "retry: 2000\n\n"
        if view is not None:
            yield _sse("agent", await view.reload())
        last_sent = time.monotonic()
        while not stopping.is_set() and not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(subscription.queue.get(), 1.0)
            except TimeoutError:
                if time.monotonic() - last_sent > 15:
                    last_sent = time.monotonic()
                    yield ": keep-alive\n\n"
                continue
            last_sent = time.monotonic()
            if scope == "call" and event.get("call_sid") != target:
                continue
            if view is not None:
                card = await view.apply(event)
                if card is not None:
                    yield _sse("agent", card)
            else:
                yield _sse(str(event.get("type", "event")), event)
    finally:
        services.metrics.sse_clients.dec()
        subscription.close()


def _sse(kind: str, data: object) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"
