"""The heard-confidence floor on the other-language request sets: B and C read the same transcripts (issue #29).

The rule's regression check 3 (docs/experiments/2026-12-08-intent-heard-confidence-rule.md): every
recording of a set goes through what ``benchmarks/intents_languages.py`` does (the shipped
transcriber behind language identification), once; the shipped analyser reads it with the
recogniser's confidence (C; since try 3 only where the line is good) and without (B). One JSON
line per set: recordings, exact intent and queue group for B and C.

    PYTHONPATH=. python docs/experiments/intent-confidence/languages.py benchmarks/data/intents_languages_mbrola ...
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))


def main() -> None:
    """Print one JSON line per set named."""
    import torch

    from audio_models.audio_io import load_audio
    from audio_models.line_quality import assess
    from audio_models.multilingual import load_multilingual
    from audio_models.transcribe import heard_confidence
    from benchmarks.common import shipped_recogniser
    from router.policy import load_policy
    from router.text import load_text_analyser

    torch.set_num_threads(1)
    policy = load_policy()
    analyser = load_text_analyser(policy.text)
    if analyser.own_words is not None:
        analyser.own_words.wait()
    order = list(policy.text.intent_routes)
    queue_of = {name: route.queue for name, route in policy.text.intent_routes.items()} | {"general": "general"}
    for name in sys.argv[1:]:
        data = Path(name)
        serve = ["cs", "fi"] if "festival" in data.name else []
        transcriber = load_multilingual(shipped_recogniser(), [*policy.languages.routes, *serve],
                                        min_probability=policy.languages.min_probability)
        tally = {"B_exact": 0, "C_exact": 0, "B_queue": 0, "C_queue": 0, "recordings": 0}
        for row in csv.DictReader((data / "sentences.csv").open(encoding="utf-8")):
            label = "general" if row["intent"] == "none" else row["intent"]
            for path in sorted(data.glob(f"{row['id']}-*.wav")):
                seg = transcriber.transcribe(wave := load_audio(path))
                tally["recordings"] += 1
                good = policy.line.good(assess(wave), len(wave) / 16000)
                for side, sure in (("B", None), ("C", heard_confidence(seg) if good else None)):
                    found = analyser.analyse(seg.text, seg.alternatives, original=seg.original, confidence=sure).intents
                    pred = next((n for n in order if n in found), "general")
                    tally[f"{side}_exact"] += pred == label
                    tally[f"{side}_queue"] += queue_of[pred] == row["queue"]
        print(json.dumps({"set": data.name, **tally}), flush=True)


if __name__ == "__main__":
    main()
