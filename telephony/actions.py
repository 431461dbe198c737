"""Acting on a call through Twilio's REST API, or recording exactly what would be sent.

``TwilioRestActions`` calls ``client.calls(sid).update(twiml=...)``, which is
``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` with form field
``Twiml``. ``DryRunActions`` records that same request (method, URL, form) so the
demo and tests can check it without credentials.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from telephony.twiml import enqueue_twiml

log = logging.getLogger(__name__)
API_BASE = "https://api.twilio.com/2010-04-01"
TASKROUTER_BASE = "https://taskrouter.twilio.com/v1"


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
    """Where to send a call: the Twilio queue name, priority and task attributes."""

    twilio_queue: str
    priority: int
    attributes: dict[str, Any]
    hold_prompt: str
    voice: str


class CallActions(Protocol):
    """What the router needs from telephony."""

    async def route_call(self, call_sid: str, spec: RouteSpec) -> RestRequest:
        """Redirect a live call into its queue."""
        ...

    async def update_priority(self, call_sid: str, priority: int) -> RestRequest | None:
        """Raise the priority of the call's queued TaskRouter task (None when there is none)."""
        ...


class _ActionsBase:
    def __init__(self, *, account_sid: str, workflow_sid: str | None, workspace_sid: str | None = None) -> None:
        self.account_sid = account_sid
        self.workflow_sid = workflow_sid
        self.workspace_sid = workspace_sid

    def task_lookup(self, call_sid: str) -> tuple[str, dict[str, str]] | None:
        """Return the URL and query that find the call's task, or None without TaskRouter."""
        if not (self.workflow_sid and self.workspace_sid):
            return None
        return (f"{TASKROUTER_BASE}/Workspaces/{self.workspace_sid}/Tasks",
                {"EvaluateTaskAttributes": f'call_sid == "{call_sid}"', "AssignmentStatus": "pending"})

    def build_route_request(self, call_sid: str, spec: RouteSpec) -> RestRequest:
        twiml = enqueue_twiml(
            twilio_queue=spec.twilio_queue, priority=spec.priority, attributes=spec.attributes,
            workflow_sid=self.workflow_sid, hold_prompt=spec.hold_prompt, voice=spec.voice,
        )
        url = f"{API_BASE}/Accounts/{self.account_sid}/Calls/{call_sid}.json"
        return RestRequest("POST", url, {"Twiml": twiml}, call_sid)


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

    async def route_call(self, call_sid: str, spec: RouteSpec) -> RestRequest:
        """Record the redirect that would put the call in its queue."""
        req = self.build_route_request(call_sid, spec)
        self.requests.append(req)
        log.info("dry-run Twilio %s %s (queue %s, priority %d)", req.method, req.url, spec.twilio_queue,
                 spec.priority)
        return req


class TwilioRestActions(_ActionsBase):
    """Sends the redirect with the twilio SDK (in a thread: the SDK is blocking)."""

    def __init__(self, *, account_sid: str, auth_token: str, workflow_sid: str | None = None,
                 workspace_sid: str | None = None) -> None:
        """Create the SDK client."""
        from twilio.rest import Client

        super().__init__(account_sid=account_sid, workflow_sid=workflow_sid, workspace_sid=workspace_sid)
        self.client = Client(account_sid, auth_token)

    async def route_call(self, call_sid: str, spec: RouteSpec) -> RestRequest:
        """Update the live call with the enqueue TwiML."""
        req = self.build_route_request(call_sid, spec)
        await asyncio.to_thread(lambda: self.client.calls(call_sid).update(twiml=req.form["Twiml"]))
        return req

    async def update_priority(self, call_sid: str, priority: int) -> RestRequest | None:
        """Find the call's pending TaskRouter task and raise its priority."""
        lookup = self.task_lookup(call_sid)
        if lookup is None:
            return None
        url, query = lookup

        def update() -> str | None:
            tasks = self.client.taskrouter.v1.workspaces(self.workspace_sid).tasks.list(
                evaluate_task_attributes=query["EvaluateTaskAttributes"], assignment_status=["pending"], limit=1)
            if not tasks:
                return None
            tasks[0].update(priority=priority)
            return str(tasks[0].sid)

        task_sid = await asyncio.to_thread(update)
        if task_sid is None:
            return None
        return RestRequest("POST", f"{url}/{task_sid}", {"Priority": str(priority)}, call_sid)
