"""Choose the intent classifier's similarity floor on data that no headline figure is scored on.

Negatives: RAVDESS actors 3-22 (never the held-out 1, 2, 23, 24), each clip transcribed through
the 8 kHz mu-law line with the shipped recogniser settings; plain sentences that ask for nothing.
Positives: the espeak-ng sets the phrases and examples were tuned on (dev, fresh, holdout, blind).
For each candidate floor: the share of negatives given an intent by meaning (phrase matches such
as "buy the door" are counted apart: a floor cannot change them) and intent accuracy on the
positives. The rule: docs/experiments/2026-11-29-minilm-similarity-floor.md.

    python -m benchmarks.similarity_floor --data ../shared/data
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import list_ravdess
from benchmarks.common import shipped_recogniser
from benchmarks.transcription_benchmark import HELD_OUT, INTENTS, primary_intent
from router.policy import load_policy
from router.text import TextAnalyser, load_text_analyser

CANDIDATES = (0.35, 0.40, 0.45, 0.50, 0.55)
TUNED_SETS = ("dev", "fresh", "holdout", "blind")


def analyser_with_floor(floor: float) -> TextAnalyser:
    """Return the shipped analyser with its semantic floor set to ``floor``."""
    rules = load_policy().text
    assert rules.semantic is not None
    return load_text_analyser(rules.model_copy(update={"semantic": rules.semantic.model_copy(
        update={"min_similarity": floor})}))


def main() -> None:
    """Transcribe once, score every candidate, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rules = load_policy().text
    whisper = shipped_recogniser()
    negatives = []
    for clip in list_ravdess(args.data):
        if clip.speaker in HELD_OUT:
            continue
        seg = whisper.transcribe(telephone_round_trip(load_audio(clip.path)))
        negatives.append((seg.text, seg.alternatives))
    with (INTENTS / "labels.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["set"] in TUNED_SETS]
    positives = []
    for row in rows:
        seg = whisper.transcribe(load_audio(INTENTS / f"{row['id']}.wav"))
        positives.append((seg.text, seg.alternatives, row["intent"]))
    order = list(rules.intent_routes)
    phrases = TextAnalyser(rules)
    by_phrase = sum(bool(phrases.intents_of_readings(t, a)[0]) for t, a in negatives)
    result: dict[str, object] = {"benchmark": "similarity_floor", "negatives": len(negatives),
                                 "negatives_with_phrase_intent": by_phrase, "positives": len(positives)}
    for floor in CANDIDATES:
        analyser = analyser_with_floor(floor)
        semantic_false = sum(1 for t, a in negatives
                             if analyser.intents_of_readings(t, a)[0] and not phrases.intents_of_readings(t, a)[0])
        right = sum(primary_intent(analyser, t, order, a) == label for t, a, label in positives)
        result[f"{floor:.2f}"] = {"semantic_false_rate": round(semantic_false / len(negatives), 4),
                                  "semantic_false": semantic_false,
                                  "positives_accuracy": round(right / len(positives), 4)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
