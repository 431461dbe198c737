"""Replay the first utterance's language decision on collected rows with a floor for noisy lines (issue #30).

The shipped decision (``LanguageAwareTranscriber.first_utterance``): English when tiny.en returns
text at least 0.5 sure; otherwise another language when the identifier is at least 0.6 sure of it,
else English as sure as the guess was unsure (1 - P); the listener keeps a language only at 0.6 or
more, so a call left unsure is identified again on its next utterance. The candidate asks
``noisy_floor`` of the identifier instead of 0.6 when the line estimate is under the policy's line
floor (20 dB). Prints, per floor and condition, English callers switched to another language,
other-language callers identified, switched to a wrong one, or kept as English.

    python docs/experiments/noisy-line-language/choose.py dev.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

ENGLISH_CONFIDENCE, MIN_PROBABILITY, LINE_FLOOR_DB = 0.5, 0.6, 20.0
FLOORS = (0.6, 0.7, 0.8, 0.9, 0.95, 1.01)


def decided(row: dict, noisy_floor: float) -> str:
    """The language the first utterance is kept as ('' = unsure: identified again on the next one)."""
    if row["tiny_text"] and row["tiny_confidence"] >= ENGLISH_CONFIDENCE:
        return "en" if row["tiny_confidence"] >= MIN_PROBABILITY else ""
    guess, p = row["guess"], row["probability"]
    floor = noisy_floor if row["snr_db"] < LINE_FLOOR_DB else MIN_PROBABILITY
    if guess is None:
        return ""
    if guess == "en":
        return "en" if p >= MIN_PROBABILITY else ""
    if p >= floor:
        return guess
    return "en" if 1.0 - p >= MIN_PROBABILITY else ""  # taken as English, as unsure as the guess was sure


def table(rows: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Floor -> condition -> figures."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for floor in FLOORS:
        per: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
        for row in rows:
            got = decided(row, floor)
            tally = per[row["condition"]]
            if row["language"] == "en":
                tally["english_switched"].append(got not in ("", "en"))
            else:
                tally["other_identified"].append(got == row["language"])
                tally["other_switched_wrong"].append(got not in ("", "en", row["language"]))
                tally["other_kept_as_english"].append(got == "en")
            tally["noisy_line"].append(row["snr_db"] < LINE_FLOOR_DB)
        out[str(floor)] = {cond: {k: round(sum(v) / len(v), 3) for k, v in figures.items()}
                           for cond, figures in per.items()}
    return out


def main() -> None:
    """Print the table as JSON."""
    rows = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(table(rows), indent=1))


if __name__ == "__main__":
    main()
