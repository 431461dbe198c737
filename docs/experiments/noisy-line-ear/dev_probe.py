"""Development probe for the noisy-line ear (issue #30): tiny.en against Whisper base (English) under babble.

A set's first four requests per intent in the given voices, 0.3 s / 0.5 s of line around each,
babble of four RAVDESS actors from ``first_actor`` (9: never the benchmark's 5-8) at each SNR,
through the 8 kHz mu-law line; exact intent from each recogniser's transcript. (The run in the
record swapped Whisper base's model into a tiny.en transcriber by hand; this script does the same
through ``MultilingualWhisper.english``, which decodes with the same settings.)

    PYTHONPATH=. python docs/experiments/noisy-line-ear/dev_probe.py benchmarks/data/intents_eval_2
        flite-awb,flite-rms,flite-kal16,festival-slt-hts clean,5 9    (one line)
"""

from __future__ import annotations

import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.multilingual import MultilingualWhisper
from benchmarks.common import shipped_recogniser
from benchmarks.noisy_lines import SR, babble, mix
from benchmarks.transcription_benchmark import primary_intent
from router.policy import load_policy
from router.text import load_text_analyser

CORPORA = Path(__file__).resolve().parents[4] / "shared" / "data"


def main() -> None:
    """Print, per SNR, each recogniser's exact intent and median seconds."""
    data, voices = Path(sys.argv[1]), sys.argv[2].split(",")
    snrs = [None if s == "clean" else float(s) for s in sys.argv[3].split(",")]
    first_actor = int(sys.argv[4]) if len(sys.argv) > 4 else 9
    torch.set_num_threads(1)
    policy = load_policy()
    analyser, order = load_text_analyser(policy.text), list(policy.text.intent_routes)
    tiny = shipped_recogniser()
    ears = {"tiny": tiny, "base": MultilingualWhisper().english(tiny)}
    by_intent: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in csv.DictReader((data / "sentences.csv").open()):
        by_intent[row["intent"]].append(row)
    chosen = [row for rows in by_intent.values() for row in rows[:4]]
    for snr in snrs:
        tally: dict[str, list[float]] = defaultdict(list)
        for row in chosen:
            label = "general" if row["intent"] == "none" else row["intent"]
            for voice in voices:
                speech = load_audio(data / f"{row['id']}-{voice}.wav")
                speech = np.concatenate([np.zeros(int(0.3 * SR), np.float32), speech, np.zeros(SR // 2, np.float32)])
                if snr is not None:
                    speech = mix(speech, babble(CORPORA, len(speech), first_actor=first_actor), snr)
                wave = telephone_round_trip(np.clip(speech, -1, 1))
                for name, ear in ears.items():
                    start = time.perf_counter()
                    seg = ear.transcribe(wave)
                    tally[f"{name}_s"].append(time.perf_counter() - start)
                    heard = primary_intent(analyser, seg.text, order, seg.alternatives) if seg.text else "general"
                    tally[name].append(heard == label)
        print(snr, {k: round(float(np.median(v) if k.endswith("_s") else np.mean(v)), 3) for k, v in tally.items()}
              | {"n": len(tally["tiny"])}, flush=True)


if __name__ == "__main__":
    main()
