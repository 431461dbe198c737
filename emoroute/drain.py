"""Graceful drain of a web process on SIGTERM (Kubernetes, compose, systemd stop it that way).

A Media Stream is a call in progress: stopping the server at once would cut every caller's
analysis mid-sentence. On the first SIGTERM (or SIGINT) the process stops being ready
(``/readyz`` answers 503, so a load balancer sends new calls elsewhere) but keeps serving the calls
it holds, then exits when the last one has ended or ``EMOROUTE_DRAIN_SECONDS`` have passed,
whichever is first. A second signal exits at once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which waits for the app's live calls before it shuts down."""

    def __init__(self, config: uvicorn.Config, app: Any, *, drain_s: float) -> None:
        """Serve ``app`` (its ``state.draining`` is set on the first signal); wait up to ``drain_s``."""
        super().__init__(config)
        self.app, self.drain_s = app, drain_s
        self.app.state.draining = False
        self._draining = False

    def handle_exit(self, sig: int, frame: Any) -> None:
        """First signal: drain in the background; a second one (or no drain time): exit now."""
        if self._draining or self.drain_s <= 0:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self.app.state.draining = True
        threading.Thread(target=self._exit_when_drained, args=(sig, frame), daemon=True, name="drain").start()

    def live_calls(self) -> int:
        """Return the calls this process still holds (0 before the services started)."""
        services = getattr(self.app.state, "services", None)
        return len(services.coordinator.calls) if services is not None else 0

    def _exit_when_drained(self, sig: int, frame: Any) -> None:
        deadline = time.monotonic() + self.drain_s
        log.warning("draining: not ready for new calls; %d live calls, waiting up to %.0f s", self.live_calls(),
                    self.drain_s)
        while time.monotonic() < deadline and self.live_calls() > 0:
            time.sleep(0.2)
        log.warning("drained (%d live calls left); shutting down", self.live_calls())
        super().handle_exit(sig, frame)
