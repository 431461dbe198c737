"""Call phases: which part of the call a reading was heard in, and per-phase figures of one call.

greeting (disclosure and question, up to the decision), identification (policy IVR steps after
the decision), queue (waiting), agent (an agent has the call), survey (after the agent leg ends).
A phase starts at a real event: the decision, the last identification answer, the agent taking
the call (or TaskRouter reporting it assigned), the agent leg ending.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field

PHASES = ("greeting", "identification", "queue", "agent", "survey")


@dataclass
class PhaseTrack:
    """The phases of one live call (start times in call seconds) and running per-phase sums."""

    starts: list[tuple[float, str]] = field(default_factory=lambda: [(0.0, "greeting")])
    sums: dict[str, list[float]] = field(default_factory=dict)  # phase -> [n, sum P(angry), sum valence]
    peak_anger: float = 0.0

    @property
    def current(self) -> str:
        """The phase the call is in now."""
        return self.starts[-1][1]

    def enter(self, phase: str, t: float) -> bool:
        """Start ``phase`` at ``t`` (never before the current phase's start); False if already in it."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        if phase == self.current:
            return False
        self.starts.append((max(t, self.starts[-1][0]), phase))
        return True

    def at(self, t: float) -> str:
        """Return the phase call time ``t`` falls in."""
        i = bisect_right([s for s, _ in self.starts], t) - 1
        return self.starts[max(i, 0)][1]

    def add(self, phase: str, p_angry: float, valence: float) -> None:
        """Count one reading heard in ``phase``."""
        n, anger, val = self.sums.get(phase, [0.0, 0.0, 0.0])
        self.sums[phase] = [n + 1, anger + p_angry, val + valence]
        self.peak_anger = max(self.peak_anger, p_angry)

    def summary(self) -> str:
        """Return the per-phase means as compact JSON for the call summary: {phase: [n, anger, valence]}."""
        return json.dumps({p: [int(n), round(a / n, 3), round(v / n, 3)]
                           for p, (n, a, v) in self.sums.items() if n}, separators=(",", ":"))


def parse_phase_stats(raw: str | None) -> dict[str, tuple[int, float, float]]:
    """Return {phase: (readings, mean P(angry), mean valence)} from a summary's ``phase_stats`` ("" -> {})."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return {p: (int(v[0]), float(v[1]), float(v[2])) for p, v in data.items()
            if p in PHASES and isinstance(v, list) and len(v) == 3}


def caller_hash(secret: str, number: str) -> str:
    """Return a salted hash of a caller number (repeat callers are counted without keeping numbers)."""
    if not number:
        return ""
    return hmac.new(secret.encode(), b"caller:" + number.encode(), hashlib.sha256).hexdigest()[:20]


_CONTRACTIONS = {"don't": "do not", "dont": "do not", "doesn't": "does not", "i'd": "i would", "i'm": "i am"}


def _normalise(text: str) -> str:
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()
    return " " + " ".join(_CONTRACTIONS.get(w, w) for w in words) + " "


def says_any(text: str, phrases: list[str] | tuple[str, ...]) -> bool:
    """Return whether ``text`` contains one of ``phrases`` as whole words (case and punctuation ignored)."""
    said = _normalise(text)
    return any(_normalise(p) in said for p in phrases if p.strip())


# words that mean the caller asks for someone above the agent (an escalation in analytics)
MANAGER_PHRASES = ("manager", "supervisor", "someone in charge", "escalate", "your boss")
