"""Intent accuracy on natural voices, per voice family, from audio and from text.

The set: benchmarks/data/intents_voices (48 caller sentences, 8 per intent, each spoken by
seven voices of four families through the 8 kHz mu-law line; benchmarks/record_natural_voices.py).
Natural voices (flite, festival, piper) are the headline; espeak-ng is a stress diagnostic (its
formant voices lose their consonants above 4 kHz far more than people do).

Each recording is transcribed once with the shipped recogniser settings, then read by the
shipped analyser (phrases, then the semantic classifier) with each encoder asked for.

    python -m benchmarks.intent_voices

The comparison that chose the encoder (all-MiniLM-L6-v2 against all-mpnet-base-v2, whose wheels
are no longer installed) is recorded in docs/experiments/2026-11-29-intent-encoder-natural-voices.*.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict

import torch

from audio_models.audio_io import load_audio
from benchmarks.common import shipped_recogniser
from benchmarks.record_natural_voices import DATA, VOICES
from benchmarks.transcription_benchmark import primary_intent
from router.policy import load_policy
from router.text import TextAnalyser, load_text_analyser

# each encoder's documented similarity floor (router/policy.yaml; mpnet's as it was when compared)
MIN_SIMILARITY = {"all-mpnet-base-v2": 0.31, "all-MiniLM-L6-v2": load_policy().text.semantic.min_similarity
                  if load_policy().text.semantic else 0.40}
NATURAL = ("flite", "festival", "piper")


def analyser_for(encoder: str) -> TextAnalyser:
    """Return the shipped analyser with ``encoder`` (and its floor) in place of the policy's."""
    rules = load_policy().text
    assert rules.semantic is not None
    semantic = rules.semantic.model_copy(update={"encoder": encoder, "min_similarity": MIN_SIMILARITY[encoder]})
    return load_text_analyser(rules.model_copy(update={"semantic": semantic}))


def main() -> None:
    """Transcribe, analyse, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", default=load_policy().text.semantic.encoder if load_policy().text.semantic
                    else "all-MiniLM-L6-v2", help="comma list of encoders to score (default: the policy's)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rules = load_policy().text
    whisper = shipped_recogniser()
    with (DATA / "sentences.csv").open() as fh:
        sentences = list(csv.DictReader(fh))
    heard = {}
    for row in sentences:
        for voice in VOICES:
            seg = whisper.transcribe(load_audio(DATA / f"{row['id']}-{voice}.wav"))
            heard[(row["id"], voice)] = (seg.text, seg.alternatives)
    order = list(rules.intent_routes)
    result: dict[str, object] = {"benchmark": "intent_voices", "n_sentences": len(sentences),
                                 "voices": VOICES, "recogniser": whisper.name}
    for encoder in args.encoders.split(","):
        analyser = analyser_for(encoder)
        right: dict[str, list[bool]] = defaultdict(list)
        errors = []
        for row in sentences:
            from_text = primary_intent(analyser, row["text"], order) == row["intent"]
            for voice, family in VOICES.items():
                text, alternatives = heard[(row["id"], voice)]
                pred = primary_intent(analyser, text, order, alternatives)
                right[f"{family}:audio"].append(pred == row["intent"])
                right[f"{voice}:audio"].append(pred == row["intent"])
                if family in NATURAL:
                    right["natural:audio"].append(pred == row["intent"])
                if pred != row["intent"] and family in NATURAL:
                    errors.append({"id": row["id"], "voice": voice, "label": row["intent"], "pred": pred,
                                   "heard": text})
            right["text"].append(from_text)
        result[encoder] = {
            "natural_voices_audio": round(sum(right["natural:audio"]) / len(right["natural:audio"]), 4),
            "text": round(sum(right["text"]) / len(right["text"]), 4),
            "per_family_audio": {f: round(sum(right[f"{f}:audio"]) / len(right[f"{f}:audio"]), 4)
                                 for f in dict.fromkeys(VOICES.values())},
            "per_voice_audio": {v: round(sum(right[f"{v}:audio"]) / len(right[f"{v}:audio"]), 4) for v in VOICES},
            "errors_natural": errors,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
