"""Emotion v3 candidates' speed, one run on one idle machine (rule: ../2026-12-07-emotion-v3-routing-choice-rule.md).

emotion_benchmark's method: one 3 s utterance on one core (median of 30), a batch of 32 of
1.5-4.5 s on two (median of 5). Prints one JSON line per model directory given.

    python docs/experiments/emotion-v3-routing/speed.py audio_models/models/emotion-v3-nine-corpora DIR ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from audio_models.backends import load_emotion_model  # noqa: E402
from benchmarks.emotion_benchmark import _speed  # noqa: E402

if __name__ == "__main__":
    for source in sys.argv[1:]:
        model = load_emotion_model(source=Path(source))
        print(json.dumps({"model": source, **_speed(model)}), flush=True)
