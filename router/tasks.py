"""Stopping background tasks that loop on Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def stop_tasks(tasks: Iterable[asyncio.Task[object]], *, every_s: float = 0.5) -> None:
    """Cancel the tasks and wait until each has stopped, cancelling again while one still runs.

    One cancel is not enough for a task looping on Redis: on Python 3.11 a cancellation that lands
    as a redis-py read's own timeout fires can be taken for that timeout (the read returns
    nothing and the loop goes on). A web process stopping after a Redis fail-over hung that way.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every_s)
