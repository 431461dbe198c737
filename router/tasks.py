"""Stopping background tasks that loop on Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def stop_tasks(tasks: Iterable[asyncio.Task[object]], *, stopping: asyncio.Event | None = None,
                     grace_s: float = 3.0, every_s: float = 0.5) -> None:
    """Stop the tasks: ask them (``stopping``), then cancel, again and again, until each has stopped.

    A loop on Redis that sees ``stopping`` set ends by itself between two reads and closes its
    connections; cancelling it mid-read can leave a connection open. One cancel is not always
    enough either: on Python 3.11 a cancellation that lands as a redis-py read's own timeout
    fires can be taken for that timeout (the read returns nothing and the loop goes on).
    """
    pending = {task for task in tasks if not task.done()}
    if stopping is not None and pending:
        stopping.set()
        _, pending = await asyncio.wait(pending, timeout=grace_s)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every_s)
