"""Log lines about what anyone can send: escaped, and within a budget (security review, #33)."""

from __future__ import annotations

import logging
import time


def printable(value: object, limit: int = 64) -> str:
    """Return ``value`` fit for one log line: at most ``limit`` characters, control characters escaped."""
    text = str(value)[:limit]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


class RefusalLog:
    """Warnings about refused requests: at most ``per_minute`` a minute per process, then one count.

    Anyone can send refused requests; each used to write a WARNING (5,000 requests, 5,000 lines)
    carrying what the sender chose. Here every argument is escaped (:func:`printable`), and past
    the budget lines are only counted, reported once the minute is over (the metrics count all).
    """

    def __init__(self, per_minute: int = 30) -> None:
        """One budget per server (the service bundle holds it)."""
        self.per_minute = per_minute
        self.window, self.written, self.suppressed = time.monotonic(), 0, 0

    def warning(self, logger: logging.Logger, message: str, *args: object) -> None:
        """Log a refusal through ``logger``, within the budget."""
        now = time.monotonic()
        if now - self.window >= 60:
            if self.suppressed:
                logger.warning("%d more refused requests in the last minute were not logged", self.suppressed)
            self.window, self.written, self.suppressed = now, 0, 0
        if self.written >= self.per_minute:
            self.suppressed += 1
            return
        self.written += 1
        logger.warning(message, *(printable(a, 200) if isinstance(a, str) else a for a in args))
