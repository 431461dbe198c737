"""One call's summary and timeline for the API and the timeline page: from Redis, or from the history store.

Redis holds a call for its retention; a call it no longer holds (or never held on this
deployment's Redis) is read from the history store (router.history), marked ``archived``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import HTTPException, status

from emoroute.services import Services

log = logging.getLogger(__name__)


async def stored_call(services: Services, call_sid: str) -> dict[str, str] | None:
    """Return a call's summary from Redis, else from the history store (with ``archived``: "1"), else None."""
    call = await services.store.get_call(call_sid)
    if call is not None or services.history is None:
        return call
    try:
        row = await asyncio.to_thread(services.history.call, call_sid)
    except Exception as exc:  # noqa: BLE001 - named to the client as an outage, not as "no such call"
        log.warning("history store unreadable (%s)", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the history store cannot be reached") from exc
    if row is None:
        return None
    summary = {k: str(v) for k, v in json.loads(row["summary"]).items()}
    return {**summary, "call_sid": call_sid, "archived": "1"}


async def stored_timeline(services: Services, call: dict[str, str]) -> list[dict[str, Any]]:
    """Return the timeline of a call :func:`stored_call` returned, from where its summary came."""
    if call.get("archived") != "1" or services.history is None:
        return await services.store.get_timeline(call["call_sid"])
    entries = await asyncio.to_thread(services.history.timeline, call["call_sid"])
    out = []
    for seq, entry in enumerate(entries):
        item: dict[str, Any] = {"id": f"archived-{seq}", **entry}
        if "probs" in item:
            item["probs"] = json.loads(item["probs"])
        out.append(item)
    return out
