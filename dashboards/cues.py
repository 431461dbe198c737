"""What an agent or supervisor sees about one caller, derived from the stored timeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.policy import CueRule, TrajectoryPoint, anger_trend

EMOTION_STYLE: dict[str, dict[str, str]] = {
    "angry": {"colour": "#c62828", "icon": "😠"},
    "happy": {"colour": "#2e7d32", "icon": "🙂"},
    "neutral": {"colour": "#607d8b", "icon": "😐"},
    "sad": {"colour": "#1565c0", "icon": "😢"},
}
TREND_DELTA = 0.1


def readings_of(timeline: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the reading entries of a timeline, oldest first."""
    return [e for e in timeline if e.get("type") == "reading"]


def points_of(readings: Sequence[dict[str, Any]]) -> list[TrajectoryPoint]:
    """Return readings as policy trajectory points."""
    return [TrajectoryPoint(float(r["t"]), dict(r["probs"]), float(r["arousal"]), float(r["valence"]),
                            str(r.get("kind", "utterance"))) for r in readings]


def trend_word(delta: float) -> str:
    """Return rising, falling or steady for a change in P(angry)."""
    if delta >= TREND_DELTA:
        return "rising"
    if delta <= -TREND_DELTA:
        return "falling"
    return "steady"


def anger_duration(readings: Sequence[dict[str, Any]], threshold: float) -> float:
    """Return for how many seconds (call audio time) the latest readings have all been angry."""
    if not readings or readings[-1]["probs"].get("angry", 0.0) < threshold:
        return 0.0
    start = float(readings[-1].get("start", readings[-1]["t"]))
    for r in reversed(readings):
        if r["probs"].get("angry", 0.0) < threshold:
            break
        start = min(start, float(r.get("start", r["t"])))
    return round(float(readings[-1]["t"]) - start, 1)


OPTED_OUT_CUE = "The caller refused the analysis: no tone cues for this call. Ask how you can help."
NOISY_LINE = "noisy line: going by what was said"


def pick_cue(rules: Sequence[CueRule], *, emotion: str, trend: str, intents: set[str],
             probs: dict[str, float] | None = None) -> str:
    """Return the first matching suggestion (``probs``: the latest reading's, for ``min_probability``)."""
    for rule in rules:
        if rule.emotion and rule.emotion != emotion and not (
                rule.min_probability is not None and probs is not None
                and float(probs.get(rule.emotion, 0.0)) >= rule.min_probability):
            continue
        if rule.trend and rule.trend != trend:
            continue
        if rule.intent and rule.intent not in intents:
            continue
        return rule.say
    return ""


def caller_cues(
    summary: dict[str, str], timeline: Sequence[dict[str, Any]], rules: Sequence[CueRule]
) -> dict[str, Any]:
    """Return the live cue card for one caller: emotion, colour, icon, trend, intents, snippets, suggestion."""
    readings = readings_of(timeline)
    latest = readings[-1] if readings else None
    emotion = latest["label"] if latest else "unknown"
    delta = anger_trend(points_of(readings), 30.0) if readings else 0.0
    trend = trend_word(delta)
    intents = {i for i in summary.get("intents", "").split(",") if i}
    snippets = [{"t": float(e["t"]), "text": e["transcript"],
                 **({"original": e["original"]} if e.get("original") else {})}
                for e in timeline if e.get("transcript")]
    # the latest reading's line too poor for its tone to count: the cue goes by the words alone
    noisy = latest is not None and str(latest.get("noisy", "")) in ("1", "True", "true")
    style = EMOTION_STYLE.get(emotion, {"colour": "#9e9e9e", "icon": "…"})
    return {
        "call_sid": summary.get("call_sid", ""),
        "caller": summary.get("caller", ""),
        "status": summary.get("status", ""),
        "queue": summary.get("queue", ""),
        "priority": summary.get("priority", ""),
        "reason": summary.get("reason", ""),
        "emotion": emotion,
        # what the tone suggests and how sure the model is, whatever the call was routed on
        "confidence": round(float(latest["probs"].get(emotion, 0.0)), 3) if latest else None,
        "colour": style["colour"],
        "icon": style["icon"],
        "probs": latest["probs"] if latest else {},
        "arousal": float(latest["arousal"]) if latest else None,
        "valence": float(latest["valence"]) if latest else None,
        "trend": trend,
        "trend_delta": round(delta, 3),
        "intents": sorted(intents),
        "snippets": snippets[-3:],
        "hearing": summary.get("partial_transcript", ""),
        "suggestion": (OPTED_OUT_CUE if summary.get("opted_out") == "1"
                       else pick_cue(rules, emotion="unknown" if noisy else emotion, trend="steady" if noisy else trend,
                                     intents=intents, probs=None if noisy or not latest else latest["probs"])),
        "keypad": summary.get("keypad", ""),
        "line": NOISY_LINE if noisy else "",
        "language": summary.get("language", ""),
        "updated_t": float(latest["t"]) if latest else None,
    }
