"""Acting on a call through Twilio's REST API, or recording exactly what would be sent.

``TwilioRestActions`` sends ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json``
with form field ``Twiml`` (what the SDK's ``calls(sid).update(twiml=...)`` sends) from an async
HTTP client of its own: a timeout on every request and a bounded number in flight, so a slow
or dead Twilio never holds a thread of the shared executor nor the event loop.
``DryRunActions`` records that same request (method, URL, form) so the demo and tests can
check it without credentials. A CallSid must have Twilio's shape before it reaches a URL or a
TaskRouter filter expression.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx

from telephony.credentials import WORKSPACE_OR_WORKFLOW_SID, is_account_sid, is_call_sid
from telephony.twiml import STREAM_NAME, enqueue_twiml

log = logging.getLogger(__name__)
API_BASE = "https://api.twilio.com"
TASKROUTER_BASE = "https://taskrouter.twilio.com"


class TwilioRequestError(RuntimeError):
    """A Twilio REST request failed, timed out, or was not attempted (bad id)."""


@dataclass(frozen=True)
class RestRequest:
    """One Twilio REST request (sent, or recorded in dry-run mode)."""

    method: str
    url: str
    form: dict[str, str]
    call_sid: str
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready view."""
        return asdict(self)


@dataclass(frozen=True)
class RouteSpec:
    """Where to send a call: the Twilio queue name, priority and task attributes.

    ``action_url`` is the ``<Enqueue>`` action (requested when the agent leg ends). ``twiml``, when
    set, is sent instead of the enqueue document: an identification step or the keypad menu that
    leads to the queue.
    """

    twilio_queue: str
    priority: int
    attributes: dict[str, Any]
    hold_prompt: str
    voice: str
    action_url: str | None = None
    twiml: str | None = None


class CallActions(Protocol):
    """What the router needs from telephony."""

    async def route_call(self, call_sid: str, spec: RouteSpec) -> RestRequest:
        """Redirect a live call into its queue."""
        ...

    async def update_priority(self, call_sid: str, priority: int) -> RestRequest | None:
        """Raise the priority of the call's queued TaskRouter task (None when there is none)."""
        ...

    async def stop_stream(self, call_sid: str) -> RestRequest:
        """Stop the call's Media Stream without touching its TwiML (queue position, agent leg)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def checked_call_sid(call_sid: str) -> str:
    """Return ``call_sid`` if it has Twilio's shape (CA + 32 hex digits).

    Raises:
        TwilioRequestError: anything else, so it never reaches a URL or a filter expression.
    """
    if not is_call_sid(call_sid):
        raise TwilioRequestError(f"refusing a Twilio request for malformed CallSid {call_sid[:40]!r}")
    return call_sid


class _ActionsBase:
    def __init__(self, *, account_sid: str, workflow_sid: str | None, workspace_sid: str | None = None,
                 api_base: str = API_BASE, taskrouter_base: str = TASKROUTER_BASE) -> None:
        for name, sid in (("workflow", workflow_sid), ("workspace", workspace_sid)):
            if sid and not WORKSPACE_OR_WORKFLOW_SID.fullmatch(sid):
                raise ValueError(f"TaskRouter {name} SID {sid!r} is not WS/WW + 32 hex digits")
        if not is_account_sid(account_sid):
            raise ValueError(f"Twilio account SID {account_sid!r} is not AC + 32 hex digits")
        self.account_sid = account_sid
        self.workflow_sid = workflow_sid
        self.workspace_sid = workspace_sid
        self.api_base = api_base.rstrip("/")
        self.taskrouter_base = taskrouter_base.rstrip("/")

    def task_lookup(self, call_sid: str) -> tuple[str, dict[str, str]] | None:
        """Return the URL and query that find the call's task, or None without TaskRouter."""
        if not (self.workflow_sid and self.workspace_sid):
            return None
        sid = checked_call_sid(call_sid)
        return (f"{self.taskrouter_base}/v1/Workspaces/{self.workspace_sid}/Tasks",
                {"EvaluateTaskAttributes": f'call_sid == "{sid}"', "AssignmentStatus": "pending"})

    def build_route_request(self, call_sid: str, spec: RouteSpec) -> RestRequest:
        sid = checked_call_sid(call_sid)
        twiml = spec.twiml or enqueue_twiml(
            twilio_queue=spec.twilio_queue, priority=spec.priority, attributes=spec.attributes,
            workflow_sid=self.workflow_sid, hold_prompt=spec.hold_prompt, voice=spec.voice,
            action_url=spec.action_url,
        )
        url = f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json"
        return RestRequest("POST", url, {"Twiml": twiml}, sid)

    def build_stop_stream_request(self, call_sid: str) -> RestRequest:
        """Return the Stream resource update that stops the ``<Stream name="emoroute">`` of a live call.

        Twilio's Stream resource is addressed by the SID or the name the stream was started with;
        stopping it leaves the call where it is (in its queue, or talking to an agent).
        """
        sid = checked_call_sid(call_sid)
        url = f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}/Streams/{STREAM_NAME}.json"
        return RestRequest("POST", url, {"Status": "stopped"}, sid)

    async def aclose(self) -> None:
        """Release what the actions hold (nothing, unless they talk to Twilio)."""


class DryRunActions(_ActionsBase):
    """Records the REST requests it would send (the last ``keep`` of them)."""

    def __init__(self, *, account_sid: str, workflow_sid: str | None = None, workspace_sid: str | None = None,
                 keep: int = 10_000) -> None:
        """Record into a bounded deque."""
        super().__init__(account_sid=account_sid, workflow_sid=workflow_sid, workspace_sid=workspace_sid)
        self.requests: deque[RestRequest] = deque(maxlen=keep)

    async def update_priority(self, call_sid: str, priority: int) -> RestRequest | None:
        """Record the task lookup and the priority update (the task SID is known only to Twilio)."""
        lookup = self.task_lookup(call_sid)
        if lookup is None:
            return None
        url, query = lookup
        self.requests.append(RestRequest("GET", url, query, call_sid))
        update = RestRequest("POST", f"{url}/{{TaskSid of {call_sid}}}", {"Priority": str(priority)}, call_sid)
        self.requests.append(update)
        return update

    async def stop_stream(self, call_sid: str) -> RestRequest:
        """Record the Stream resource update that would stop the call's stream."""
        req = self.build_stop_stream_request(call_sid)
        self.requests.append(req)
        log.info("dry-run Twilio %s %s (stop the stream)", req.method, req.url)
        return req

    async def route_call(self, call_sid: str, spec: RouteSpec) -> RestRequest:
        """Record the redirect that would put the call in its queue."""
        req = self.build_route_request(call_sid, spec)
        self.requests.append(req)
        log.info("dry-run Twilio %s %s (queue %s, priority %d)", req.method, req.url, spec.twilio_queue,
                 spec.priority)
        return req


class TwilioRestActions(_ActionsBase):
    """Sends the requests to Twilio from its own async client: bounded, with a timeout on each."""

    def __init__(self, *, account_sid: str, auth_token: str, workflow_sid: str | None = None,
                 workspace_sid: str | None = None, api_base: str = API_BASE,
                 taskrouter_base: str = TASKROUTER_BASE, timeout_s: float = 4.0, max_concurrency: int = 16) -> None:
        """Create the HTTP client (HTTP basic auth with the account SID and auth token)."""
        super().__init__(account_sid=account_sid, workflow_sid=workflow_sid, workspace_sid=workspace_sid,
                         api_base=api_base, taskrouter_base=taskrouter_base)
        self.timeout_s = timeout_s
        self.client = httpx.AsyncClient(
            auth=(account_sid, auth_token), timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency))
        self._slots = asyncio.Semaphore(max_concurrency)

    async def _send(self, method: str, url: str, *, data: dict[str, str] | None = None,
                    params: dict[str, str] | None = None) -> httpx.Response:
        try:
            # waiting for a slot counts against the same deadline as the request itself
            async with asyncio.timeout(self.timeout_s * 2):
                async with self._slots:
                    response = await self.client.request(method, url, data=data, params=params)
        except (TimeoutError, httpx.HTTPError) as exc:
            raise TwilioRequestError(f"Twilio {method} {url}: {type(exc).__name__} {exc}") from exc
        if response.status_code >= 400:
            raise TwilioRequestError(f"Twilio {method} {url}: HTTP {response.status_code} {response.text[:200]}")
        return response

    async def route_call(self, call_sid: str, spec: RouteSpec) -> RestRequest:
        """Update the live call with the enqueue TwiML."""
        req = self.build_route_request(call_sid, spec)
        await self._send("POST", req.url, data=req.form)
        return req

    async def stop_stream(self, call_sid: str) -> RestRequest:
        """Stop the call's Media Stream through Twilio's Stream resource."""
        req = self.build_stop_stream_request(call_sid)
        await self._send("POST", req.url, data=req.form)
        return req

    async def update_priority(self, call_sid: str, priority: int) -> RestRequest | None:
        """Find the call's pending TaskRouter task and raise its priority."""
        lookup = self.task_lookup(call_sid)
        if lookup is None:
            return None
        url, query = lookup
        found = (await self._send("GET", url, params={**query, "PageSize": "1"})).json()
        tasks = found.get("tasks") or []
        task_sid = str(tasks[0].get("sid", "")) if tasks else ""
        if not task_sid.startswith("WT") or not task_sid[2:].isalnum():
            return None
        form = {"Priority": str(priority)}
        await self._send("POST", f"{url}/{task_sid}", data=form)
        return RestRequest("POST", f"{url}/{task_sid}", form, call_sid)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
