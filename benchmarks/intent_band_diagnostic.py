"""Where the intent gap from audio comes from: the same labelled lines, spoken at full band and through the line.

Each line of benchmarks/data/intents/labels.csv is spoken again by espeak-ng (its voice and
speed from the file) and heard by the shipped recogniser and text analyser four ways:
``full_band`` (16 kHz, nothing removed), ``mulaw_16k`` (mu-law quantisation only),
``band_8k`` (the 8 kHz band limit only, linear samples) and ``phone_line`` (8 kHz mu-law, what a
call carries). The shipped recordings are the phone-line condition made by sox; this one uses
the service's own codec, so the two differ by a few utterances. A diagnostic, not a figure of
the product: calls are always phone-band. Needs Debian's espeak-ng.

    python -m benchmarks.intent_band_diagnostic [--sets dev,fresh] [--conditions full_band,phone_line]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from audio_models.audio_io import load_audio
from audio_models.g711 import mulaw_decode, mulaw_encode, resample, telephone_round_trip
from audio_models.transcribe import WhisperTranscriber, word_error_rate
from benchmarks.transcription_benchmark import INTENTS, primary_intent
from router.policy import load_policy
from router.text import load_text_analyser

CONDITIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "full_band": lambda wave: wave,
    "mulaw_16k": lambda wave: mulaw_decode(mulaw_encode(wave)),
    "band_8k": lambda wave: resample(resample(wave, 16000, 8000), 8000, 16000),
    "phone_line": telephone_round_trip,
}


def main() -> None:
    """Speak, hear, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", help="comma list of labelled sets (default: all)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS),
                    help="comma list of %(default)s")
    args = ap.parse_args()
    conditions = args.conditions.split(",")
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        ap.error(f"unknown conditions {sorted(unknown)}: choose from {', '.join(CONDITIONS)}")
    torch.set_num_threads(1)
    rules = load_policy().text
    whisper = WhisperTranscriber(threads=1, vocabulary=rules.asr_vocabulary, word_timestamps=False,
                                 alternatives=rules.asr_alternatives, alternative_margin=rules.asr_alternative_margin,
                                 beam_size=rules.asr_beam_size)
    analyser = load_text_analyser(rules)
    order = list(rules.intent_routes)
    with (INTENTS / "labels.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if not args.sets or r["set"] in args.sets.split(",")]
    spoken = {}
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            path = Path(tmp) / f"{row['id']}.wav"
            subprocess.run(["espeak-ng", "-v", row["voice"], "-s", row["speed"], "-w", str(path), row["text"]],
                           check=True)
            spoken[row["id"]] = load_audio(path)
    figures = {}
    for name in conditions:
        heard = [whisper.transcribe(CONDITIONS[name](spoken[row["id"]])) for row in rows]
        right = sum(primary_intent(analyser, seg.text, order, seg.alternatives) == row["intent"]
                    for seg, row in zip(heard, rows, strict=True))
        figures[name] = {"intent_accuracy": round(right / len(rows), 4),
                         "wer": round(word_error_rate([r["text"] for r in rows], [s.text for s in heard]), 4)}
    from_text = sum(primary_intent(analyser, row["text"], order) == row["intent"] for row in rows)
    print(json.dumps({"benchmark": "intent_band_diagnostic", "n": len(rows), "engine": whisper.name,
                      "from_text": round(from_text / len(rows), 4), "conditions": figures}))


if __name__ == "__main__":
    main()
