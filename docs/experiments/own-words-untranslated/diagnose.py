"""Why other-language recordings come back empty: the own words' floor, or only the translation's (issue #30).

Transcribes fresh mbrola set 3 as the shipped path does, watching each confidence floor the
multilingual path applies (the caller's own words first, then the translation), and prints the
count of each outcome. Rule: docs/experiments/2026-12-07-own-words-untranslated-rule.md.

    PYTHONPATH=. python docs/experiments/own-words-untranslated/diagnose.py
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from audio_models import multilingual  # noqa: E402
from audio_models.audio_io import load_audio  # noqa: E402
from audio_models.multilingual import load_multilingual  # noqa: E402
from audio_models.transcribe import TranscriptSegment  # noqa: E402
from benchmarks.common import shipped_recogniser  # noqa: E402
from router.policy import load_policy  # noqa: E402

DATA = REPO / "benchmarks" / "data" / "intents_languages_mbrola_3"


def main() -> None:
    """Print how many recordings came back, and which floor dropped the others."""
    torch.set_num_threads(1)
    policy = load_policy()
    transcriber = load_multilingual(shipped_recogniser(), list(policy.languages.routes),
                                    min_probability=policy.languages.min_probability)
    seen: list[tuple[str, bool]] = []  # (decoded text, under its floor) for each floor applied
    plain = multilingual.finish_segments

    def watched(segments: list, floor: float, name: str) -> TranscriptSegment:
        out = plain(segments, floor, name)
        seen.append((segments[0].text, out.empty))
        return out

    multilingual.finish_segments = watched  # type: ignore[assignment]
    outcomes: Counter[str] = Counter()
    for row in csv.DictReader((DATA / "sentences.csv").open(encoding="utf-8")):
        for path in sorted(DATA.glob(f"{row['id']}-*.wav")):
            seen.clear()
            segment = transcriber.transcribe(load_audio(path))
            if segment.language == "en" or not seen:
                outcomes["taken for English"] += 1
            elif seen[0][1]:
                outcomes["own words under their floor" + ("" if seen[0][0] else " (a loop, blanked)")] += 1
            elif len(seen) > 1 and seen[1][1]:
                outcomes["translation under its floor, own words above theirs"] += 1
            else:
                outcomes["returned"] += 1
    print(dict(outcomes))


if __name__ == "__main__":
    main()
