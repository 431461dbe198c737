"""The transcription queue: the most urgent utterance first.

Transcription is the costly step of a live call, and on a small machine a burst of callers
queues for it. A caller still waiting for a routing decision matters more than one already in a
queue, so the worker threads take work by priority (lowest number first) and, within a priority,
in the order it came.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from audio_models.pipeline import WorkDropped

URGENT = 0  # a final utterance of a call that has not been routed yet
NORMAL = 1  # a final utterance of a routed call (agent cues, re-routing)
SPARE = 2  # partial transcripts: only when nothing else waits


class PriorityPool:
    """Worker threads that run submitted calls by priority, then first come, first served.

    At most ``max_waiting`` calls wait: past that, the oldest of the least urgent waiting work
    (partials, then routed callers' sentences) fails with ``WorkDropped`` to make room.
    URGENT work (a sentence that decides where a caller goes) is never dropped.
    """

    def __init__(self, workers: int = 1, name: str = "asr", *, max_waiting: int = 64) -> None:
        """Start ``workers`` daemon threads."""
        self.max_waiting = max_waiting
        self.dropped = 0
        self._heap: list[tuple[int, int, Future[Any], Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    @property
    def waiting(self) -> int:
        """Return how many submitted calls have not started."""
        with self._cv:
            return len(self._heap)

    def submit(self, priority: int, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue ``fn(*args)`` at ``priority``; return its future."""
        future: Future[Any] = Future()
        with self._cv:
            if self._closed:
                raise RuntimeError("the transcription queue is shut down")
            if len(self._heap) >= self.max_waiting:
                # the least urgent, then the oldest of those
                victim = max((e for e in self._heap if e[0] != URGENT), key=lambda e: (e[0], -e[1]), default=None)
                if victim is None or (priority != URGENT and priority > victim[0]):
                    if priority != URGENT:
                        self.dropped += 1
                        future.set_exception(WorkDropped("transcription queue full: dropped"))
                        return future
                else:
                    self._heap.remove(victim)
                    heapq.heapify(self._heap)
                    self.dropped += 1
                    victim[2].set_exception(WorkDropped("transcription queue full: oldest less urgent work dropped"))
            heapq.heappush(self._heap, (priority, next(self._seq), future, fn, args))
            self._cv.notify()
        return future

    def shutdown(self) -> None:
        """Cancel what has not started and let the threads end after their current call."""
        with self._cv:
            self._closed = True
            for _, _, future, _, _ in self._heap:
                future.cancel()
            self._heap.clear()
            self._cv.notify_all()

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if not self._heap:
                    return
                _, _, future, fn, args = heapq.heappop(self._heap)
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited (the call's task was cancelled)
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                future.set_exception(exc)
            else:
                future.set_result(result)
