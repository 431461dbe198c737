"""Intents from new caller wording in natural voices: the trained classifier's headline figure (issue #29).

The set: benchmarks/data/intents_eval (72 caller requests written after the classifier's training
set was frozen, 12 per intent and 12 general-service requests; rule:
docs/experiments/2026-12-06-intent-classifier-rule.md), each spoken by six natural voices (flite
awb/kal16/rms/slt, festival HTS slt, piper joe) and espeak-ng (a diagnostic) through the 8 kHz
mu-law line (benchmarks/record_natural_voices.py). Each recording is transcribed by the shipped
recogniser settings and read by the shipped analyser (the classifier and the policy's phrases).

Prints one JSON line: exact intent and queue group from audio in the natural voices and from the
text, general-service requests read with an intent, per voice, the misses, and the classifier's
time per transcript on one core. ``--transcripts F`` keeps the transcripts (reused when present)
so another analyser can read exactly the same words.

    python -m benchmarks.intent_eval
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch

from audio_models.audio_io import load_audio
from benchmarks.common import shipped_recogniser
from benchmarks.record_natural_voices import VOICES
from benchmarks.transcription_benchmark import primary_intent
from router.policy import load_policy
from router.text import load_text_analyser

DATA = Path(__file__).resolve().parent / "data" / "intents_eval"
NATURAL = ("flite", "festival", "piper")


def transcripts(data: Path, rows: list[dict[str, str]], keep: Path | None) -> dict[str, list]:
    """Return {recording: [text, alternatives]}, transcribing what ``keep`` does not already hold."""
    heard: dict[str, list] = json.loads(keep.read_text()) if keep and keep.is_file() else {}
    whisper = None
    for row in rows:
        for voice in VOICES:
            name = f"{row['id']}-{voice}"
            if name not in heard:
                whisper = whisper or shipped_recogniser()
                seg = whisper.transcribe(load_audio(data / f"{name}.wav"))
                heard[name] = [seg.text, list(seg.alternatives)]
    if keep:
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_text(json.dumps(heard, indent=0))
    return heard


def main() -> None:
    """Transcribe, analyse, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--transcripts", type=Path, help="JSON file keeping the transcripts (reused when present)")
    ap.add_argument("--policy", type=Path, help="policy file (default: the shipped one; its intent_model.training "
                                                "path must be absolute when the file lies elsewhere)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    policy = load_policy(args.policy)
    analyser = load_text_analyser(policy.text, args.policy)
    with (args.data / "sentences.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    heard = transcripts(args.data, rows, args.transcripts)
    order = list(policy.text.intent_routes)
    queue_of = {name: route.queue for name, route in policy.text.intent_routes.items()}
    queue_of["general"] = policy.default_queue
    tally: dict[str, list[bool]] = {}
    misses = []

    def count(key: str, ok: bool) -> None:
        tally.setdefault(key, []).append(ok)

    for row in rows:
        label = "general" if row["intent"] == "none" else row["intent"]
        count("text", primary_intent(analyser, row["text"], order) == label)
        for voice, family in VOICES.items():
            text, alternatives = heard[f"{row['id']}-{voice}"]
            pred = primary_intent(analyser, text, order, tuple(alternatives))
            count(f"{voice}", pred == label)
            if family in NATURAL:
                count("natural", pred == label)
                count("natural_queue", queue_of[pred] == row["queue"])
                if label == "general":
                    count("general_with_intent", pred != "general")
                if pred != label:
                    misses.append({"id": row["id"], "voice": voice, "label": label, "pred": pred, "heard": text})
    sample = [heard[f"{row['id']}-flite-slt"][0] for row in rows]
    analyser.intents(sample[0])
    start = time.perf_counter()
    for text in sample:
        analyser.intents(text)
    per_ms = (time.perf_counter() - start) / len(sample) * 1000

    def share(key: str) -> float:
        return round(sum(tally[key]) / len(tally[key]), 4)

    print(json.dumps({
        "benchmark": "intent_eval", "data": args.data.name, "policy": str(args.policy or "shipped"),
        "sentences": len(rows), "voices": list(VOICES),
        "natural_voices_exact": share("natural"), "natural_voices_queue_group": share("natural_queue"),
        "text_exact": share("text"), "general_requests_read_with_intent": share("general_with_intent"),
        "per_voice_exact": {v: share(v) for v in VOICES}, "classify_ms_per_transcript_1_core": round(per_ms, 1),
        "misses_natural": misses}))


if __name__ == "__main__":
    main()
