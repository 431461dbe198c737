"""At most one heavy read-model computation at a time per process; identical requests share one.

Analytics over a long period are seconds of pure Python in a worker thread. Several of them at once
(a supervisor reloading, two supervisors opening the same month) would each hold the interpreter
in turn and slow the live calls' event loop; one at a time bounds that, and a request identical to
one already running waits for its answer instead of computing it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class ComputeGate:
    """Runs computations one at a time (``limit``); a key already running is joined, not repeated."""

    def __init__(self, limit: int = 1) -> None:
        """Allow ``limit`` computations at once."""
        self._slots = asyncio.Semaphore(limit)
        self._running: dict[Hashable, asyncio.Task[Any]] = {}
        self.computed = 0  # how many computations actually ran (shared requests count once)

    async def run(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """Return ``compute()``'s result, sharing a computation already running under ``key``."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._one_at_a_time(compute))
            self._running[key] = task
            task.add_done_callback(lambda _t: self._running.pop(key, None))
        # a caller that goes away does not cancel the computation others wait on
        return await asyncio.shield(task)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the slots: for work done in pieces (a streamed export), one piece at a time."""
        async with self._slots:
            yield

    async def _one_at_a_time(self, compute: Callable[[], Awaitable[T]]) -> T:
        async with self._slots:
            self.computed += 1
            return await compute()
