"""Readings with the recogniser's confidence, for the intent-confidence rule (issue #29).

``requests SET...``: every recording of the English request sets (benchmarks/data/intents_eval*,
the six natural voices; espeak-ng left out, as in intent_eval's headline), transcribed as a live
call's first utterance is (the shipped recogniser behind language identification). ``plain
--set dev|judge``: plain emotional-speech clips through the line (dump_readings.py's samples: dev,
speakers the emotion model trained on; judge, the held-out speakers live_false_intents streams).
One JSON line per recording: text, next-best readings, own words, confidence, language.

    PYTHONPATH=. python docs/experiments/intent-confidence/readings.py requests intents_eval intents_eval_2 > r.jsonl
    PYTHONPATH=. python docs/experiments/intent-confidence/readings.py plain dev > plain-dev.jsonl
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "docs" / "experiments" / "intent-remarks"))

NATURAL = ("flite-awb", "flite-kal16", "flite-rms", "flite-slt", "festival-slt-hts", "piper-joe")


def main() -> None:
    """Print one JSON line per recording."""
    import torch

    from audio_models.audio_io import load_audio
    from audio_models.g711 import telephone_round_trip
    from benchmarks.common import shipped_recogniser
    from emoroute.services import with_languages
    from router.policy import load_policy

    torch.set_num_threads(1)
    engine = with_languages(shipped_recogniser(), load_policy())
    items: list[tuple[dict[str, str], object]] = []
    if sys.argv[1] == "requests":
        for name in sys.argv[2:]:
            data = REPO / "benchmarks" / "data" / name
            for row in csv.DictReader((data / "sentences.csv").open(encoding="utf-8")):
                for voice in NATURAL:
                    path = data / f"{row['id']}-{voice}.wav"
                    if path.is_file():
                        items.append(({"set": name, "id": row["id"], "voice": voice, "intent": row["intent"]}, path))
    else:
        from dump_readings import CORPORA, clips_of

        for corpus in CORPORA:
            if sys.argv[2] == "judge" and corpus == "tess":
                continue
            items += [({"set": f"plain-{sys.argv[2]}", "id": c.key, "voice": corpus, "intent": "none"}, c.path)
                      for c in clips_of(REPO.parent / "shared" / "data", corpus, sys.argv[2], 60)]
    for row, path in items:
        wave = load_audio(path)
        if row["set"].startswith("plain"):
            wave = telephone_round_trip(wave)
        seg = engine.transcribe(wave)
        print(json.dumps({**row, "text": seg.text, "alternatives": list(seg.alternatives), "original": seg.original,
                          "confidence": seg.confidence, "language": seg.language,
                          "language_probability": seg.language_probability}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
